// Linear-attention kernels and recurrent decoding.
//   BM_{simple_gla,gla}_chunk_{fwd,fwd_bwd}: chunk form against T = 1k .. 32k (linear cost),
//     GFLOP/s and its fraction of the BLAS GEMM rate measured in the same run (gemm_frac), both
//     in process CPU time (run with OMP_NUM_THREADS=1 for an exact per-core figure);
//   BM_attention_{plain,flash}_fwd_bwd_same_width: softmax attention of the same B, H, head dim;
//   BM_decode_<mixer>: decode tokens/s of one mixer layer (the mixer of configs/<mixer>.json)
//     after prefilling a context of 1k .. 32k tokens; state_bytes shows the state stays constant.
#include <benchmark/benchmark.h>

#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "autograd/var.h"
#include "gemm_reference.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "nn/mixer.h"
#include "ops/attention/attention/attention.h"
#include "ops/linear/gla/gla.h"
#include "ops/linear/simple_gla/simple_gla.h"

namespace speedlm {
double measure_gemm_gflops(int threads, bool bf16);
}

namespace speedlm::ops {

namespace {

constexpr int64_t kH = 4, kK = 64, kV = 64, kChunk = 64;


// Flops of the chunk form as executed, per token and head (README.md): the forward is
// K^T V (states) + Q S (inter) + Q K^T and A V (full C x C blocks): 4 K V + 2 C (K + V);
// the backward adds recomputed states, the dS pass, dV (2 GEMMs), dQ/dK inter, dA, dQ/dK intra:
// 10 K V + 2 C (3 K + 2 V).
double chunk_flops(int64_t T, bool with_bwd) {
  double per = 4.0 * kK * kV + 2.0 * kChunk * (kK + kV);
  if (with_bwd) per += 10.0 * kK * kV + 2.0 * kChunk * (3.0 * kK + 2.0 * kV);
  return per * static_cast<double>(T * kH);
}

Tensor randn(Shape s, uint64_t seed, float std = 1.0f, float mean = 0.0f) {
  Tensor t = Tensor::empty(std::move(s));
  Rng rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = mean + std * rng.normal();
  return t;
}

// The BLAS GEMM rate of this run: measure_gemm_gflops (wall clock, 1024^3), and the same GEMM
// timed in process CPU seconds (bench::gemm_cpu_rate), the basis of the chunk counters.
double gemm_rate() {
  static const double rate = measure_gemm_gflops(num_threads(), false);
  return rate;
}

struct LinearInputs {
  int64_t T;
  bool per_channel;
  Tensor q, k, v, g, o, d_o, dq, dk, dv, dg;
  LinearInputs(int64_t T_, bool per_channel_) : T(T_), per_channel(per_channel_) {
    q = randn({1, T, kH, kK}, 1, 0.125f);
    k = randn({1, T, kH, kK}, 2, 0.125f);
    v = randn({1, T, kH, kV}, 3);
    g = per_channel ? randn({1, T, kH, kK}, 4, 0.01f, -0.05f) : randn({1, T, kH}, 4, 0.01f, -0.05f);
    o = Tensor::empty(v.shape());
    d_o = randn(v.shape(), 5);
    dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()), dv = Tensor::empty(v.shape());
    dg = Tensor::empty(g.shape());
  }
  void fwd() {
    if (per_channel)
      gla_chunk_fwd({0.0f, kChunk}, {1, T, kH, kK, kV}, q.f32(), k.f32(), v.f32(), g.f32(), nullptr, o.f32(), nullptr);
    else
      simple_gla_chunk_fwd({0.0f, kChunk}, {1, T, kH, kK, kV}, q.f32(), k.f32(), v.f32(), g.f32(), nullptr, o.f32(),
                           nullptr);
  }
  void bwd() {
    if (per_channel)
      gla_chunk_bwd({0.0f, kChunk}, {1, T, kH, kK, kV}, q.f32(), k.f32(), v.f32(), g.f32(), nullptr, d_o.f32(),
                    nullptr, dq.f32(), dk.f32(), dv.f32(), dg.f32(), nullptr);
    else
      simple_gla_chunk_bwd({0.0f, kChunk}, {1, T, kH, kK, kV}, q.f32(), k.f32(), v.f32(), g.f32(), nullptr, d_o.f32(),
                           nullptr, dq.f32(), dk.f32(), dv.f32(), dg.f32(), nullptr);
  }
};

void set_rate(benchmark::State& state, double flops) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// GFLOP/s over process CPU seconds; gemm_frac = that / the CPU-timed GEMM rate of this run.
void run_chunk(benchmark::State& state, bool per_channel, bool with_bwd) {
  LinearInputs in(state.range(0), per_channel);
  const double wall_rate = gemm_rate(), cpu_rate = bench::gemm_cpu_rate();
  for (auto _ : state) {
    in.fwd();
    if (with_bwd) in.bwd();
  }
  const double flops = chunk_flops(in.T, with_bwd);
  set_rate(state, flops);
  state.counters["gemm_GFLOP/s"] = wall_rate;
  state.counters["gemm_cpu_GFLOP/s"] = cpu_rate;
  state.counters["gemm_frac"] =
      benchmark::Counter(flops / cpu_rate * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void lengths(benchmark::internal::Benchmark* b) {
  b->ArgName("T");
  for (int64_t t : {1024, 2048, 4096, 8192, 16384, 32768}) b->Arg(t);
  b->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime();
  bench::best_of_repetitions(b);
}

}  // namespace

static void BM_simple_gla_chunk_fwd(benchmark::State& s) { run_chunk(s, false, false); }
static void BM_simple_gla_chunk_fwd_bwd(benchmark::State& s) { run_chunk(s, false, true); }
static void BM_gla_chunk_fwd(benchmark::State& s) { run_chunk(s, true, false); }
static void BM_gla_chunk_fwd_bwd(benchmark::State& s) { run_chunk(s, true, true); }
BENCHMARK(BM_simple_gla_chunk_fwd)->Apply(lengths);
BENCHMARK(BM_simple_gla_chunk_fwd_bwd)->Apply(lengths);
BENCHMARK(BM_gla_chunk_fwd)->Apply(lengths);
BENCHMARK(BM_gla_chunk_fwd_bwd)->Apply(lengths);

// Softmax attention of the same width: B = 1, H = 4 heads of 64, causal; plain and flash forms.
void run_attention(benchmark::State& state, bool flash) {
  const int64_t T = state.range(0);
  AttentionParams p;
  AttentionDims d{1, T, T, kH, kH, kK};
  Tensor q = randn({1, T, kH, kK}, 1), k = randn(q.shape(), 2), v = randn(q.shape(), 3), d_o = randn(q.shape(), 4);
  Tensor o = Tensor::empty(q.shape()), lse = Tensor::empty({1, kH, T});
  Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(q.shape()), dv = Tensor::empty(q.shape());
  for (auto _ : state) {
    if (flash) {
      attention_flash_fwd(p, d, q.f32(), k.f32(), v.f32(), o.f32(), lse.f32());
      attention_flash_bwd(p, d, q.f32(), k.f32(), v.f32(), o.f32(), lse.f32(), d_o.f32(), dq.f32(), dk.f32(), dv.f32());
    } else {
      attention_plain_fwd(p, d, q.f32(), k.f32(), v.f32(), o.f32(), lse.f32());
      attention_plain_bwd(p, d, q.f32(), k.f32(), v.f32(), o.f32(), lse.f32(), d_o.f32(), dq.f32(), dk.f32(), dv.f32());
    }
  }
}

static void BM_attention_plain_fwd_bwd_same_width(benchmark::State& s) { run_attention(s, false); }
static void BM_attention_flash_fwd_bwd_same_width(benchmark::State& s) { run_attention(s, true); }
BENCHMARK(BM_attention_plain_fwd_bwd_same_width)
    ->Arg(8192)
    ->ArgName("T")
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime();
BENCHMARK(BM_attention_flash_fwd_bwd_same_width)
    ->Arg(8192)
    ->ArgName("T")
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime();

}  // namespace speedlm::ops

namespace speedlm {

namespace {

constexpr int64_t kDModel = 384;

// The mixer of configs/<type>.json (d_model 384 in every one of them).
nlohmann::json mixer_config(const std::string& type) {
  const std::string path = std::string(SPEEDLM_CONFIGS_DIR) + "/" + type + ".json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("bench_linear: cannot read " + path);
  return nlohmann::json::parse(in).at("mixers").at(type);
}

// One mixer layer with a state prefilled to `context` tokens (chunk form), kept across runs.
struct Prefilled {
  std::unique_ptr<nn::Mixer> mixer;
  std::unique_ptr<MixerState> state;
};

Prefilled& prefilled(const std::string& type, int64_t context) {
  static std::map<std::pair<std::string, int64_t>, Prefilled> cache;
  auto key = std::make_pair(type, context);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  Prefilled p;
  p.mixer = nn::make_mixer(mixer_config(type), kDModel);
  p.mixer->init({}, 1);
  p.state = p.mixer->make_state(1);
  ag::NoGradGuard guard;
  constexpr int64_t kPiece = 4096;
  for (int64_t t0 = 0; t0 < context; t0 += kPiece) {
    const int64_t n = std::min(kPiece, context - t0);
    p.mixer->forward(ag::Var(ops::randn({n, kDModel}, 7 + t0)), 1, n, p.state.get());
  }
  return cache.emplace(key, std::move(p)).first->second;
}

void run_decode(benchmark::State& state, const std::string& type) {
  Prefilled& p = prefilled(type, state.range(0));
  Tensor x = ops::randn({1, kDModel}, 9);
  for (auto _ : state) benchmark::DoNotOptimize(p.mixer->step(x, *p.state).f32());
  state.SetItemsProcessed(state.iterations());
  state.counters["state_bytes"] = static_cast<double>(p.state->bytes());
}

void contexts(benchmark::internal::Benchmark* b) {
  b->ArgName("context");
  for (int64_t c : {1024, 4096, 32768}) b->Arg(c);
  b->Iterations(500)->Unit(benchmark::kMicrosecond)->MeasureProcessCPUTime();
}

}  // namespace

static void BM_decode_linear_attention(benchmark::State& s) { run_decode(s, "linear_attention"); }
static void BM_decode_retnet(benchmark::State& s) { run_decode(s, "retnet"); }
static void BM_decode_gla(benchmark::State& s) { run_decode(s, "gla"); }
static void BM_decode_mamba2(benchmark::State& s) { run_decode(s, "mamba2"); }
static void BM_decode_deltanet(benchmark::State& s) { run_decode(s, "deltanet"); }
static void BM_decode_gated_deltanet(benchmark::State& s) { run_decode(s, "gated_deltanet"); }
static void BM_decode_rwkv7(benchmark::State& s) { run_decode(s, "rwkv7"); }
static void BM_decode_mamba(benchmark::State& s) { run_decode(s, "mamba"); }
BENCHMARK(BM_decode_linear_attention)->Apply(contexts);
BENCHMARK(BM_decode_retnet)->Apply(contexts);
BENCHMARK(BM_decode_gla)->Apply(contexts);
BENCHMARK(BM_decode_mamba2)->Apply(contexts);
BENCHMARK(BM_decode_deltanet)->Apply(contexts);
BENCHMARK(BM_decode_gated_deltanet)->Apply(contexts);
BENCHMARK(BM_decode_rwkv7)->Apply(contexts);
BENCHMARK(BM_decode_mamba)->Apply(contexts);

}  // namespace speedlm
