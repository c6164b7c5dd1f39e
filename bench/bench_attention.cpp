// Attention forms side by side: plain vs flash, forward and forward + backward, with the
// kernels' peak extra memory, and the oneDNN sgemm rate of the same run as the yardstick.
#include <benchmark/benchmark.h>

#include "core/parallel.h"
#include "core/rng.h"
#include "core/tensor_bytes.h"
#include "ops/attention/attention/attention.h"
#include "ops/linalg/gemm/gemm.h"

namespace speedlm {
double measure_gemm_gflops(int threads, bool bf16);
}

namespace speedlm::ops {

namespace {

// GFLOP/s convention (FlashAttention's): a forward is two T x T x Dh GEMMs per head, 2 flops per
// multiply-add, halved when causal: 2 * 2 * Tq * Tk * Dh * H * B (/ 2). The backward is five such
// GEMMs (S recomputed, dP, dV, dK, dQ), so forward + backward counts 3.5 forwards.
double forward_flops(const AttentionParams& p, const AttentionDims& d) {
  return 4.0 * static_cast<double>(d.B * d.H * d.Tq * d.Tk * d.Dh) / (p.causal ? 2.0 : 1.0);
}

enum class Form { Plain, Flash };

struct Inputs {
  AttentionParams p;
  AttentionDims d;
  Form form;
  Tensor q, k, v, o, lse, d_o, dq, dk, dv;

  Inputs(const benchmark::State& state, Form f, bool bf16 = false) : form(f) {
    p.bf16 = bf16;
    d = {.B = state.range(0), .Tq = state.range(1), .Tk = state.range(1), .H = state.range(2),
         .KVH = state.range(3), .Dh = state.range(4)};
    q = Tensor::empty({d.B, d.Tq, d.H, d.Dh});
    k = Tensor::empty({d.B, d.Tk, d.KVH, d.Dh});
    v = Tensor::empty(k.shape());
    d_o = Tensor::empty(q.shape());
    Rng rng(1);
    for (Tensor* t : {&q, &k, &v, &d_o})
      for (int64_t i = 0; i < t->numel(); ++i) t->f32()[i] = rng.normal();
    o = Tensor::empty(q.shape());
    dq = Tensor::empty(q.shape());
    dk = Tensor::empty(k.shape());
    dv = Tensor::empty(k.shape());
  }
  void fwd() {
    auto fn = form == Form::Plain ? attention_plain_fwd : attention_flash_fwd;
    fn(p, d, q.f32(), k.f32(), v.f32(), o.f32(), lse.f32(), nullptr);
  }
  void bwd() {
    auto fn = form == Form::Plain ? attention_plain_bwd : attention_flash_bwd;
    fn(p, d, q.f32(), k.f32(), v.f32(), o.f32(), lse.f32(), d_o.f32(), dq.f32(), dk.f32(), dv.f32(), nullptr,
       nullptr);
  }
  // Peak bytes the kernels allocate (workspace and the saved lse; the inputs, o and the gradients
  // belong to the caller), over one forward or forward + backward.
  double extra_mib(bool backward) {
    lse = Tensor();
    const size_t before = tensor_live_bytes();
    reset_tensor_peak_bytes();
    lse = Tensor::empty({d.B, d.H, d.Tq});
    fwd();
    if (backward) bwd();
    return static_cast<double>(tensor_peak_bytes() - before) / (1 << 20);
  }
};

void set_counters(benchmark::State& state, double flops, double mib) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["extra_MiB"] = mib;
}

void run(benchmark::State& state, Form form, bool backward, bool bf16 = false) {
  Inputs in(state, form, bf16);
  const double mib = in.extra_mib(backward);
  for (auto _ : state) {
    in.fwd();
    if (backward) in.bwd();
  }
  set_counters(state, (backward ? 3.5 : 1.0) * forward_flops(in.p, in.d), mib);
}

// Args: B, T, H, KVH, Dh; causal self-attention (Tq = Tk = T). Plain stops where one iteration
// takes seconds.
void shapes(benchmark::internal::Benchmark* b, int64_t max_t) {
  b->ArgNames({"B", "T", "H", "KVH", "Dh"});
  b->Args({16, 256, 6, 2, 64});  // the default model's training shape
  for (int64_t t = 512; t <= max_t; t *= 2) b->Args({1, t, 8, 8, 64});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

// The yardstick: oneDNN f32 sgemm 1024^3 on all threads, measured in the same run.
static void BM_gemm_f32_1024(benchmark::State& state) {
  double g = 0.0;
  for (auto _ : state) g = measure_gemm_gflops(num_threads(), false);
  state.counters["GFLOP/s"] = g;
}
BENCHMARK(BM_gemm_f32_1024)->Iterations(1)->Unit(benchmark::kMillisecond);

// The same product as a benchmark loop, so that its CPU time column compares with the attention
// rows' (the robust figure single-threaded on a loaded machine).
static void BM_gemm_f32_1024_loop(benchmark::State& state) {
  const int64_t n = 1024;
  Tensor a = Tensor::full({n, n}, 0.5f), b = Tensor::full({n, n}, 0.25f), c = Tensor::empty({n, n});
  for (auto _ : state) gemm(false, true, n, n, n, 1.0f, a.f32(), n, b.f32(), n, 0.0f, c.f32(), n);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_gemm_f32_1024_loop)->Unit(benchmark::kMillisecond);

static void BM_attention_plain_fwd(benchmark::State& state) { run(state, Form::Plain, false); }
BENCHMARK(BM_attention_plain_fwd)->Apply([](auto* b) { shapes(b, 8192); });
static void BM_attention_flash_fwd(benchmark::State& state) { run(state, Form::Flash, false); }
BENCHMARK(BM_attention_flash_fwd)->Apply([](auto* b) { shapes(b, 16384); });

static void BM_attention_plain_fwd_bwd(benchmark::State& state) { run(state, Form::Plain, true); }
BENCHMARK(BM_attention_plain_fwd_bwd)->Apply([](auto* b) { shapes(b, 4096); });
static void BM_attention_flash_fwd_bwd(benchmark::State& state) { run(state, Form::Flash, true); }
BENCHMARK(BM_attention_flash_fwd_bwd)->Apply([](auto* b) { shapes(b, 16384); });

// The bf16 training mode: matmul operands in bf16 (AMX where present), f32 softmax.
static void BM_attention_plain_bf16_fwd_bwd(benchmark::State& state) { run(state, Form::Plain, true, true); }
BENCHMARK(BM_attention_plain_bf16_fwd_bwd)->Apply([](auto* b) { shapes(b, 4096); });

}  // namespace speedlm::ops
