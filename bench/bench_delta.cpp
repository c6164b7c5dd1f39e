// Delta-rule family (gated_delta_rule, rwkv7, selective_scan): chunk form time against T (linear
// cost), chunk vs step form over the same tokens, GFLOP/s of the chunk kernels next to the GEMM
// GFLOP/s measured in the same run (BM_delta_gemm_reference, wall clock; gemm_frac, CPU time:
// gemm_reference.h). Figures: docs/BENCHMARKS.md.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "gemm_reference.h"
#include "ops/linear/gated_delta_rule/gated_delta_rule.h"
#include "ops/linear/rwkv7/rwkv7.h"
#include "ops/ssm/selective_scan/selective_scan.h"

namespace speedlm {
double measure_gemm_gflops(int threads, bool bf16);
}

namespace speedlm::ops {

namespace {

using Vec = std::vector<float>;

Vec normal(Rng& rng, int64_t n, float std = 1.0f) {
  Vec x(n);
  for (float& e : x) e = std * rng.normal();
  return x;
}
Vec uniform(Rng& rng, int64_t n, float lo, float hi) {
  Vec x(n);
  for (float& e : x) e = lo + (hi - lo) * rng.uniform();
  return x;
}

// GEMM flops (2 per multiply-add) per chunk of c tokens and head, triangular solves included
// (c^3 / 3). The backwards rerun the forward without its output, then do their own products
// (README.md "Chunk backward" of each op).
double gdr_flops(int64_t c_, int64_t K_, int64_t V_, bool bwd) {
  const double c = c_, K = K_, V = V_;
  const double fwd = 2 * (3 * c * c * K + 2 * c * c * V + 3 * c * K * V) + c * c * c / 3;
  if (!bwd) return fwd;
  const double rerun = 2 * (2 * c * c * K + c * c * V + 2 * c * K * V) + c * c * c / 3;
  return fwd + rerun + 2 * (7 * c * c * K + 4 * c * c * V + 6 * c * K * V + 2 * c * c * c);
}
double rwkv7_flops(int64_t c_, int64_t K_, int64_t V_, bool bwd) {
  const double c = c_, K = K_, V = V_;
  const double fwd = 2 * (4 * c * c * K + 4 * c * c * V + 4 * c * K * V) + c * c * c / 3;
  if (!bwd) return fwd;
  const double rerun = 2 * (4 * c * c * K + 2 * c * c * V + 3 * c * K * V) + c * c * c / 3;
  return fwd + rerun + 2 * (8 * c * c * K + 8 * c * c * V + 8 * c * K * V);
}

void set_rate(benchmark::State& state, double flops) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// Args: T, H, K = V (B = 1).
struct Gdr {
  GatedDeltaRuleParams p;
  GatedDeltaRuleDims d;
  Vec q, k, v, beta, g, h0, o, ht, d_o, d_ht, dq, dk, dv, dbeta, dg, dh0;
  explicit Gdr(const benchmark::State& s) {
    d = {.B = 1, .T = s.range(0), .H = s.range(1), .K = s.range(2), .V = s.range(2)};
    const int64_t nk = d.T * d.H * d.K, nv = d.T * d.H * d.V, ns = d.T * d.H, nh = d.H * d.K * d.V;
    Rng rng(1);
    q = normal(rng, nk), k = normal(rng, nk, 0.7f / std::sqrt(static_cast<float>(d.K))), v = normal(rng, nv);
    beta = uniform(rng, ns, 0, 1), g = uniform(rng, ns, -0.3f, 0), h0 = normal(rng, nh);
    d_o = normal(rng, nv), d_ht = normal(rng, nh);
    o.resize(nv), ht.resize(nh), dq.resize(nk), dk.resize(nk), dv.resize(nv), dbeta.resize(ns), dg.resize(ns);
    dh0.resize(nh);
  }
  double flops(bool bwd) const { return gdr_flops(p.chunk, d.K, d.V, bwd) * d.H * (static_cast<double>(d.T) / p.chunk); }
  GatedDeltaRuleGradsF grads() { return {dq.data(), dk.data(), dv.data(), dbeta.data(), dg.data(), dh0.data()}; }
  void fwd() {
    gated_delta_rule_chunk_fwd(p, d, q.data(), k.data(), v.data(), beta.data(), g.data(), h0.data(), o.data(),
                               ht.data());
  }
  void bwd() {
    gated_delta_rule_chunk_bwd(p, d, q.data(), k.data(), v.data(), beta.data(), g.data(), h0.data(), d_o.data(),
                               d_ht.data(), grads());
  }
  void step_fwd() {
    ht = h0;
    gated_delta_rule_step_fwd(p, d, q.data(), k.data(), v.data(), beta.data(), g.data(), ht.data(), o.data());
  }
  void step_bwd() {
    gated_delta_rule_step_bwd(p, d, q.data(), k.data(), v.data(), beta.data(), g.data(), h0.data(), d_o.data(),
                              d_ht.data(), grads());
  }
};

// Args: T, H, K = V (B = 1). RWKV-7's decay range; a = -kk, b = kk * 0.5.
struct Rwkv {
  Rwkv7Params p;
  Rwkv7Dims d;
  Vec q, w, k, v, a, b, h0, o, ht, d_o, d_ht, dq, dw, dk, dv, da, db, dh0;
  explicit Rwkv(const benchmark::State& s) {
    d = {.B = 1, .T = s.range(0), .H = s.range(1), .K = s.range(2), .V = s.range(2)};
    const int64_t nk = d.T * d.H * d.K, nv = d.T * d.H * d.V, nh = d.H * d.K * d.V;
    const float ks = 1.0f / std::sqrt(static_cast<float>(d.K));
    Rng rng(1);
    q = normal(rng, nk), w = uniform(rng, nk, -0.6065f, 0), k = normal(rng, nk, ks), v = normal(rng, nv);
    a = normal(rng, nk, ks), b = a;
    for (int64_t i = 0; i < nk; ++i) a[i] = -a[i], b[i] *= 0.5f;
    h0 = normal(rng, nh), d_o = normal(rng, nv), d_ht = normal(rng, nh);
    o.resize(nv), ht.resize(nh), dq.resize(nk), dw.resize(nk), dk.resize(nk), dv.resize(nv), da.resize(nk);
    db.resize(nk), dh0.resize(nh);
  }
  double flops(bool bwd) const {
    return rwkv7_flops(p.chunk, d.K, d.V, bwd) * d.H * (static_cast<double>(d.T) / p.chunk);
  }
  Rwkv7Grads<float> grads() { return {dq.data(), dw.data(), dk.data(), dv.data(), da.data(), db.data(), dh0.data()}; }
  void fwd() {
    rwkv7_chunk_fwd(p, d, q.data(), w.data(), k.data(), v.data(), a.data(), b.data(), h0.data(), o.data(), ht.data());
  }
  void bwd() {
    rwkv7_chunk_bwd(p, d, q.data(), w.data(), k.data(), v.data(), a.data(), b.data(), h0.data(), d_o.data(),
                    d_ht.data(), grads());
  }
  void step_fwd() {
    ht = h0;
    rwkv7_step_fwd(p, d, q.data(), w.data(), k.data(), v.data(), a.data(), b.data(), ht.data(), o.data());
  }
  void step_bwd() {
    rwkv7_step_bwd(p, d, q.data(), w.data(), k.data(), v.data(), a.data(), b.data(), h0.data(), d_o.data(),
                   d_ht.data(), grads());
  }
};

// Args: T, D, N (B = 1). Not GEMM-shaped: reported as time only (README.md).
struct Scan {
  SelectiveScanParams p;
  SelectiveScanDims d;
  Vec u, delta, A, Bm, Cm, Dskip, h0, y, ht, d_y, d_ht, du, ddelta, dA, dB, dC, dD, dh0;
  explicit Scan(const benchmark::State& s) {
    d = {.B = 1, .T = s.range(0), .D = s.range(1), .N = s.range(2)};
    const int64_t nu = d.T * d.D, nb = d.T * d.N, nh = d.D * d.N;
    Rng rng(1);
    u = normal(rng, nu), delta = uniform(rng, nu, 0.001f, 0.1f), A = uniform(rng, d.D * d.N, -16, -1);
    Bm = normal(rng, nb), Cm = normal(rng, nb), Dskip = normal(rng, d.D), h0 = normal(rng, nh);
    d_y = normal(rng, nu), d_ht = normal(rng, nh);
    y.resize(nu), ht.resize(nh), du.resize(nu), ddelta.resize(nu), dA.resize(nh), dB.resize(nb), dC.resize(nb);
    dD.resize(d.D), dh0.resize(nh);
  }
  double flops(bool) const { return 0.0; }
  SelectiveScanGrads<float> grads() {
    return {du.data(), ddelta.data(), dA.data(), dB.data(), dC.data(), dD.data(), dh0.data()};
  }
  void fwd() {
    selective_scan_chunk_fwd(p, d, u.data(), delta.data(), A.data(), Bm.data(), Cm.data(), Dskip.data(), h0.data(),
                             y.data(), ht.data());
  }
  void bwd() {
    selective_scan_chunk_bwd(p, d, u.data(), delta.data(), A.data(), Bm.data(), Cm.data(), Dskip.data(), h0.data(),
                             d_y.data(), d_ht.data(), grads());
  }
  void step_fwd() {
    ht = h0;
    selective_scan_step_fwd(p, d, u.data(), delta.data(), A.data(), Bm.data(), Cm.data(), Dskip.data(), ht.data(),
                            y.data());
  }
  void step_bwd() {
    selective_scan_step_bwd(p, d, u.data(), delta.data(), A.data(), Bm.data(), Cm.data(), Dskip.data(), h0.data(),
                            d_y.data(), d_ht.data(), grads());
  }
};

// GFLOP/s over wall time, and over process CPU time (cpu_GFLOP/s) with its fraction of the
// CPU-timed GEMM rate of this run (gemm_frac): on a shared machine wall time also counts the
// other processes' turns, so the CPU-time ratio is the comparable one.
void report(benchmark::State& state, double flops, double cpu_seconds) {
  if (flops <= 0) return;
  set_rate(state, flops);
  const double cpu_rate = flops * static_cast<double>(state.iterations()) / cpu_seconds * 1e-9;
  state.counters["cpu_GFLOP/s"] = cpu_rate;
  state.counters["gemm_cpu_GFLOP/s"] = bench::gemm_cpu_rate();
  state.counters["gemm_frac"] = cpu_rate / bench::gemm_cpu_rate();
}

template <typename Op>
void chunk_fwd(benchmark::State& state) {
  Op op(state);
  bench::gemm_cpu_rate();
  const double t0 = bench::process_cpu_seconds();
  for (auto _ : state) op.fwd();
  report(state, op.flops(false), bench::process_cpu_seconds() - t0);
}
template <typename Op>
void chunk_fwd_bwd(benchmark::State& state) {
  Op op(state);
  bench::gemm_cpu_rate();
  const double t0 = bench::process_cpu_seconds();
  for (auto _ : state) {
    op.fwd();
    op.bwd();
  }
  report(state, op.flops(true), bench::process_cpu_seconds() - t0);
}
template <typename Op>
void step_fwd(benchmark::State& state) {
  Op op(state);
  for (auto _ : state) op.step_fwd();
}
template <typename Op>
void step_fwd_bwd(benchmark::State& state) {
  Op op(state);
  for (auto _ : state) {
    op.step_fwd();
    op.step_bwd();
  }
}

void heads_sweep(benchmark::internal::Benchmark* b) {
  b->ArgNames({"T", "H", "K"});
  for (int64_t t : {1024, 2048, 4096, 8192, 16384, 32768}) b->Args({t, 4, 64});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
  bench::best_of_repetitions(b);
}
void heads_ratio(benchmark::internal::Benchmark* b) {
  b->ArgNames({"T", "H", "K"});
  b->Args({4096, 4, 64})->Args({4096, 4, 128});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
  bench::best_of_repetitions(b);
}
void scan_sweep(benchmark::internal::Benchmark* b) {
  b->ArgNames({"T", "D", "N"});
  for (int64_t t : {1024, 4096, 16384}) b->Args({t, 512, 16});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
void scan_ratio(benchmark::internal::Benchmark* b) {
  b->ArgNames({"T", "D", "N"});
  b->Args({4096, 512, 16});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

static void BM_delta_gemm_reference(benchmark::State& state) {
  double g = 0.0;
  for (auto _ : state) g = measure_gemm_gflops(num_threads(), false);
  state.counters["GEMM_GFLOP/s"] = g;
}
BENCHMARK(BM_delta_gemm_reference)->Iterations(1)->Unit(benchmark::kMillisecond);

BENCHMARK(chunk_fwd<Gdr>)->Name("BM_gated_delta_rule_chunk_fwd")->Apply(heads_sweep)->Args({4096, 4, 128});
BENCHMARK(chunk_fwd_bwd<Gdr>)->Name("BM_gated_delta_rule_chunk_fwd_bwd")->Apply(heads_sweep)->Args({4096, 4, 128});
BENCHMARK(step_fwd<Gdr>)->Name("BM_gated_delta_rule_step_fwd")->Apply(heads_ratio);
BENCHMARK(step_fwd_bwd<Gdr>)->Name("BM_gated_delta_rule_step_fwd_bwd")->Apply(heads_ratio);
BENCHMARK(chunk_fwd<Rwkv>)->Name("BM_rwkv7_chunk_fwd")->Apply(heads_sweep)->Args({4096, 4, 128});
BENCHMARK(chunk_fwd_bwd<Rwkv>)->Name("BM_rwkv7_chunk_fwd_bwd")->Apply(heads_sweep)->Args({4096, 4, 128});
BENCHMARK(step_fwd<Rwkv>)->Name("BM_rwkv7_step_fwd")->Apply(heads_ratio);
BENCHMARK(step_fwd_bwd<Rwkv>)->Name("BM_rwkv7_step_fwd_bwd")->Apply(heads_ratio);
BENCHMARK(chunk_fwd<Scan>)->Name("BM_selective_scan_chunk_fwd")->Apply(scan_sweep);
BENCHMARK(chunk_fwd_bwd<Scan>)->Name("BM_selective_scan_chunk_fwd_bwd")->Apply(scan_sweep);
BENCHMARK(step_fwd<Scan>)->Name("BM_selective_scan_step_fwd")->Apply(scan_ratio);
BENCHMARK(step_fwd_bwd<Scan>)->Name("BM_selective_scan_step_fwd_bwd")->Apply(scan_ratio);

}  // namespace speedlm::ops
