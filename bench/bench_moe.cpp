// MoE layer vs a dense SwiGLU with the same active parameters (hidden = k F) vs the per-token
// reference, in one run: compare their tokens/s counters side by side.
#include <benchmark/benchmark.h>

#include "core/rng.h"
#include "ops/activation/swiglu/swiglu.h"
#include "ops/linalg/gemm/gemm.h"
#include "ops/moe/moe.h"

namespace speedlm::ops {

namespace {

Tensor random(Shape s, double std, uint64_t seed) {
  Tensor t = Tensor::empty(std::move(s));
  Rng rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = static_cast<float>(std * rng.normal());
  return t;
}

void set_tokens(benchmark::State& state, int64_t N) {
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(N), benchmark::Counter::kIsIterationInvariantRate);
}

// Args: N tokens, D, E experts, k, F expert width.
struct MoeLayer {
  MoeParams p;
  int64_t N, D;
  Tensor x, w_router, w1, w2, logits, y, dy, dx, d_logits, d_router, d1, d2, d_weight;
  MoeRouting r;
  MoeSaved saved;

  explicit MoeLayer(const benchmark::State& s) : N(s.range(0)), D(s.range(1)) {
    p.E = s.range(2), p.k = s.range(3), p.F = s.range(4);
    x = random({N, D}, 1.0, 1);
    w_router = random({p.E, D}, 0.05, 2);
    w1 = random({p.E, 2 * p.F, D}, 0.05, 3);
    w2 = random({p.E, D, p.F}, 0.05, 4);
    dy = random({N, D}, 1.0, 5);
    y = Tensor::empty({N, D}), logits = Tensor::empty({N, p.E});
    d_router = Tensor::zeros({p.E, D});
    d1 = Tensor::zeros(w1.shape()), d2 = Tensor::zeros(w2.shape());
  }
  void fwd(bool keep) {
    logits = Tensor::empty({N, p.E}), y = Tensor::empty({N, D});
    gemm(false, true, N, p.E, D, 1.0f, x.f32(), D, w_router.f32(), D, 0.0f, logits.f32(), p.E);
    r = moe_route(p, N, logits.f32(), nullptr);
    moe_grouped_fwd(p, r, D, x.f32(), MoeExpertWeights{w1.f32(), w2.f32()}, y.f32(), keep ? &saved : nullptr);
  }
  void bwd() {
    dx = Tensor::empty({N, D}), d_logits = Tensor::empty({N, p.E}), d_weight = Tensor::empty({N * p.k});
    moe_grouped_bwd(p, r, D, MoeExpertWeights{w1.f32(), w2.f32()}, saved, dy.f32(), dx.f32(), d_weight.f32(),
                    d1.f32(), d2.f32());
    moe_route_bwd(p, r, logits.f32(), d_weight.f32(), d_logits.f32());
    gemm(false, false, N, D, p.E, 1.0f, d_logits.f32(), p.E, w_router.f32(), D, 1.0f, dx.f32(), D);
    gemm(true, false, p.E, D, N, 1.0f, d_logits.f32(), p.E, x.f32(), D, 1.0f, d_router.f32(), D);
  }
};

// The dense SwiGLU of hidden k F: the same active parameters (less the small router). Like the
// MoE layer (and both layers under autograd), it allocates its activations on every call.
struct DenseLayer {
  int64_t N, D, F;
  Tensor x, w1, w2, h, a, y, dy, da, dh, dx, d1, d2;

  explicit DenseLayer(const benchmark::State& s) : N(s.range(0)), D(s.range(1)), F(s.range(3) * s.range(4)) {
    x = random({N, D}, 1.0, 1);
    w1 = random({2 * F, D}, 0.05, 3);
    w2 = random({D, F}, 0.05, 4);
    dy = random({N, D}, 1.0, 5);
    d1 = Tensor::zeros(w1.shape()), d2 = Tensor::zeros(w2.shape());
  }
  void fwd() {
    h = Tensor::empty({N, 2 * F}), a = Tensor::empty({N, F}), y = Tensor::empty({N, D});
    gemm(false, true, N, 2 * F, D, 1.0f, x.f32(), D, w1.f32(), D, 0.0f, h.f32(), 2 * F);
    swiglu_fast_fwd(h.f32(), N, F, a.f32());
    gemm(false, true, N, D, F, 1.0f, a.f32(), F, w2.f32(), F, 0.0f, y.f32(), D);
  }
  void bwd() {
    da = Tensor::empty({N, F}), dh = Tensor::empty({N, 2 * F}), dx = Tensor::empty({N, D});
    gemm(true, false, D, F, N, 1.0f, dy.f32(), D, a.f32(), F, 1.0f, d2.f32(), F);
    gemm(false, false, N, F, D, 1.0f, dy.f32(), D, w2.f32(), F, 0.0f, da.f32(), F);
    swiglu_fast_bwd(h.f32(), da.f32(), N, F, dh.f32());
    gemm(true, false, 2 * F, D, N, 1.0f, dh.f32(), 2 * F, x.f32(), D, 1.0f, d1.f32(), D);
    gemm(false, false, N, D, 2 * F, 1.0f, dh.f32(), 2 * F, w1.f32(), D, 0.0f, dx.f32(), D);
  }
};

// Mixtral-like (8 experts, top-2) and fine-grained (32 experts of a quarter width, top-4), both
// at the active width of the default model's dense FFN (1024) and its training batch (16 x 256).
void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "D", "E", "k", "F"});
  b->Args({4096, 384, 8, 2, 512});
  b->Args({4096, 384, 32, 4, 256});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

static void BM_moe_grouped_fwd(benchmark::State& state) {
  MoeLayer m(state);
  m.fwd(false);  // warm-up: GEMM primitives are created on first use
  for (auto _ : state) m.fwd(false);
  set_tokens(state, m.N);
}
BENCHMARK(BM_moe_grouped_fwd)->Apply(shapes);

static void BM_dense_swiglu_fwd(benchmark::State& state) {
  DenseLayer d(state);
  d.fwd();
  for (auto _ : state) d.fwd();
  set_tokens(state, d.N);
}
BENCHMARK(BM_dense_swiglu_fwd)->Apply(shapes);

static void BM_moe_grouped_fwd_bwd(benchmark::State& state) {
  MoeLayer m(state);
  m.fwd(true);
  m.bwd();
  for (auto _ : state) {
    m.fwd(true);
    m.bwd();
  }
  set_tokens(state, m.N);
}
BENCHMARK(BM_moe_grouped_fwd_bwd)->Apply(shapes);

static void BM_dense_swiglu_fwd_bwd(benchmark::State& state) {
  DenseLayer d(state);
  d.fwd();
  d.bwd();
  for (auto _ : state) {
    d.fwd();
    d.bwd();
  }
  set_tokens(state, d.N);
}
BENCHMARK(BM_dense_swiglu_fwd_bwd)->Apply(shapes);

// The per-token reference loop (f32 instance) on the first 256 tokens of the same inputs.
static void BM_moe_ref_fwd(benchmark::State& state) {
  MoeLayer m(state);
  const int64_t n = 256;
  gemm(false, true, n, m.p.E, m.D, 1.0f, m.x.f32(), m.D, m.w_router.f32(), m.D, 0.0f, m.logits.f32(), m.p.E);
  for (auto _ : state)
    moe_ref_fwd<float>(m.p, n, m.D, m.x.f32(), m.logits.f32(), nullptr, m.w1.f32(), m.w2.f32(), m.y.f32());
  set_tokens(state, n);
}
BENCHMARK(BM_moe_ref_fwd)->Apply(shapes);

}  // namespace speedlm::ops
