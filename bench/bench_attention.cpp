#include <benchmark/benchmark.h>

#include "core/rng.h"
#include "ops/attention/attention/attention.h"

namespace speedlm::ops {

namespace {

// GFLOP/s convention (FlashAttention's): a forward is two T x T x Dh GEMMs per head, 2 flops per
// multiply-add, halved when causal: 2 * 2 * Tq * Tk * Dh * H * B (/ 2). The backward is five such
// GEMMs (S recomputed, dP, dV, dK, dQ), so forward + backward counts 3.5 forwards.
double forward_flops(const AttentionParams& p, const AttentionDims& d) {
  return 4.0 * static_cast<double>(d.B * d.H * d.Tq * d.Tk * d.Dh) / (p.causal ? 2.0 : 1.0);
}

struct Inputs {
  AttentionParams p;
  AttentionDims d;
  Tensor q, k, v, o, lse, d_o, dq, dk, dv;

  explicit Inputs(const benchmark::State& state, bool bf16 = false) {
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
    lse = Tensor::empty({d.B, d.H, d.Tq});
    dq = Tensor::empty(q.shape());
    dk = Tensor::empty(k.shape());
    dv = Tensor::empty(k.shape());
  }
  void fwd() { attention_plain_fwd(p, d, q.f32(), k.f32(), v.f32(), o.f32(), lse.f32()); }
  void bwd() {
    attention_plain_bwd(p, d, q.f32(), k.f32(), v.f32(), o.f32(), lse.f32(), d_o.f32(), dq.f32(), dk.f32(),
                        dv.f32());
  }
};

void set_rate(benchmark::State& state, double flops) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// Args: B, T, H, KVH, Dh; causal self-attention (Tq = Tk = T).
void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "T", "H", "KVH", "Dh"});
  b->Args({16, 256, 6, 2, 64});  // the default model's training shape
  for (int64_t t : {1024, 2048, 4096}) b->Args({1, t, 8, 8, 64});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

static void BM_attention_plain_fwd(benchmark::State& state) {
  Inputs in(state);
  for (auto _ : state) in.fwd();
  set_rate(state, forward_flops(in.p, in.d));
}
BENCHMARK(BM_attention_plain_fwd)->Apply(shapes);

static void BM_attention_plain_fwd_bwd(benchmark::State& state) {
  Inputs in(state);
  for (auto _ : state) {
    in.fwd();
    in.bwd();
  }
  set_rate(state, 3.5 * forward_flops(in.p, in.d));
}
BENCHMARK(BM_attention_plain_fwd_bwd)->Apply(shapes);

// The bf16 training mode: matmul operands in bf16 (AMX where present), f32 softmax.
static void BM_attention_plain_bf16_fwd_bwd(benchmark::State& state) {
  Inputs in(state, true);
  for (auto _ : state) {
    in.fwd();
    in.bwd();
  }
  set_rate(state, 3.5 * forward_flops(in.p, in.d));
}
BENCHMARK(BM_attention_plain_bf16_fwd_bwd)->Apply(shapes);

}  // namespace speedlm::ops
