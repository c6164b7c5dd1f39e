// Delta-rule family: chunk form time against T (linear cost), chunk vs step form, GFLOP/s of the
// chunk kernels next to the GEMM GFLOP/s measured in the same run (BM_delta_gemm_reference).
#include <benchmark/benchmark.h>

#include "core/parallel.h"
#include "core/rng.h"
#include "ops/linear/gated_delta_rule/gated_delta_rule.h"
#include "ops/ssm/selective_scan/selective_scan.h"

namespace speedlm {
double measure_gemm_gflops(int threads, bool bf16);
}

namespace speedlm::ops {

namespace {

// GEMM flops of the gated delta rule chunk form per (chunk, head), 2 per multiply-add; the
// triangular solve (C^3 / 3) is counted too. Forward: K K^T, Q K^T, W = T Kb, U = T Vb, W S, Q S,
// P V_new, K~^T V_new. The backward recomputes the forward without its output (5 of them) and
// does 17 more (README.md "Chunk backward").
double gdr_fwd_flops(const GatedDeltaRuleDims& d, int64_t C) {
  const double c = C, K = d.K, V = d.V, per = 2 * (2 * c * c * K + c * c * K + 2 * c * c * V + 3 * c * K * V) +
                                                c * c * c / 3;
  return per * d.B * d.H * (static_cast<double>(d.T) / C);
}
double gdr_bwd_flops(const GatedDeltaRuleDims& d, int64_t C) {
  const double c = C, K = d.K, V = d.V;
  const double recompute = 2 * (2 * c * c * K + c * c * V + 2 * c * K * V) + c * c * c / 3;
  const double back = 2 * (7 * c * c * K + 4 * c * c * V + 6 * c * K * V + 2 * c * c * c);
  return (recompute + back) * d.B * d.H * (static_cast<double>(d.T) / C);
}

struct GdrInputs {
  GatedDeltaRuleParams p;
  GatedDeltaRuleDims d;
  std::vector<float> q, k, v, beta, g, h0, o, ht, d_o, d_ht, dq, dk, dv, dbeta, dg, dh0;

  explicit GdrInputs(const benchmark::State& state) {
    d = {.B = 1, .T = state.range(0), .H = state.range(1), .K = state.range(2), .V = state.range(2)};
    const int64_t nq = d.B * d.T * d.H * d.K, nv = d.B * d.T * d.H * d.V, ns = d.B * d.T * d.H, nh = d.B * d.H * d.K * d.V;
    Rng rng(1);
    auto fill = [&](std::vector<float>& x, int64_t n, float lo, float hi, bool normal) {
      x.resize(n);
      for (float& e : x) e = normal ? hi * rng.normal() : lo + (hi - lo) * rng.uniform();
    };
    fill(q, nq, 0, 1, true);
    fill(k, nq, 0, 0.7f / std::sqrt(static_cast<float>(d.K)), true);
    fill(v, nv, 0, 1, true);
    fill(beta, ns, 0, 1, false);
    fill(g, ns, -0.3f, 0, false);
    fill(h0, nh, 0, 1, true);
    fill(d_o, nv, 0, 1, true);
    fill(d_ht, nh, 0, 1, true);
    o.resize(nv), ht.resize(nh), dq.resize(nq), dk.resize(nq), dv.resize(nv), dbeta.resize(ns), dg.resize(ns),
        dh0.resize(nh);
  }
  GatedDeltaRuleGradsF grads() { return {dq.data(), dk.data(), dv.data(), dbeta.data(), dg.data(), dh0.data()}; }
  void chunk_fwd() {
    gated_delta_rule_chunk_fwd(p, d, q.data(), k.data(), v.data(), beta.data(), g.data(), h0.data(), o.data(),
                               ht.data());
  }
  void chunk_bwd() {
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

void set_rate(benchmark::State& state, double flops) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// Args: T, H, K = V.
void t_sweep(benchmark::internal::Benchmark* b) {
  b->ArgNames({"T", "H", "K"});
  for (int64_t t : {1024, 2048, 4096, 8192, 16384, 32768}) b->Args({t, 4, 64});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
void ratio_shape(benchmark::internal::Benchmark* b) {
  b->ArgNames({"T", "H", "K"});
  b->Args({4096, 4, 64});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

static void BM_delta_gemm_reference(benchmark::State& state) {
  double g = 0.0;
  for (auto _ : state) g = measure_gemm_gflops(num_threads(), false);
  state.counters["GEMM_GFLOP/s"] = g;
}
BENCHMARK(BM_delta_gemm_reference)->Iterations(1)->Unit(benchmark::kMillisecond);

static void BM_gated_delta_rule_chunk_fwd(benchmark::State& state) {
  GdrInputs in(state);
  for (auto _ : state) in.chunk_fwd();
  set_rate(state, gdr_fwd_flops(in.d, in.p.chunk));
}
BENCHMARK(BM_gated_delta_rule_chunk_fwd)->Apply(t_sweep);

static void BM_gated_delta_rule_chunk_fwd_bwd(benchmark::State& state) {
  GdrInputs in(state);
  for (auto _ : state) {
    in.chunk_fwd();
    in.chunk_bwd();
  }
  set_rate(state, gdr_fwd_flops(in.d, in.p.chunk) + gdr_bwd_flops(in.d, in.p.chunk));
}
BENCHMARK(BM_gated_delta_rule_chunk_fwd_bwd)->Apply(t_sweep);

static void BM_gated_delta_rule_step_fwd(benchmark::State& state) {
  GdrInputs in(state);
  for (auto _ : state) in.step_fwd();
}
BENCHMARK(BM_gated_delta_rule_step_fwd)->Apply(ratio_shape);

static void BM_gated_delta_rule_step_fwd_bwd(benchmark::State& state) {
  GdrInputs in(state);
  for (auto _ : state) {
    in.step_fwd();
    in.step_bwd();
  }
}
BENCHMARK(BM_gated_delta_rule_step_fwd_bwd)->Apply(ratio_shape);

}  // namespace speedlm::ops
