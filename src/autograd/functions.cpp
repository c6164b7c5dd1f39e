#include "autograd/functions.h"

#include <cstring>

#include "autograd/grad_sink.h"
#include "core/parallel.h"
#include "ops/activation/swiglu/swiglu.h"
#include "ops/elementwise/add/add.h"
#include "ops/linalg/gemm/gemm.h"
#include "ops/nn/embedding/embedding.h"
#include "ops/norm/rmsnorm/rmsnorm.h"

namespace speedlm::ag {

namespace {

// x: [N, Din] -> y: [N, Dout] with bf16 operands, f32 accumulation. The backward keeps
// the bf16 copies of x and W (half the activation memory of the f32 path).
Var linear_bf16(const Var& x, const Var& w) {
  int64_t N = x.dim(0), Din = x.dim(1), Dout = w.dim(0);
  Var y(Tensor::empty({N, Dout}), needs_grad({&x, &w}));
  // x's bf16 copy may already exist: producers such as rmsnorm write it in their own pass.
  Tensor x16 = x.value_bf16(), w16 = w.value_bf16();
  ops::gemm_bf16(false, true, N, Dout, Din, 1.0f, x16.bf16(), Din, w16.bf16(), Din, 0.0f, y.value().f32(), Dout);
  if (y.requires_grad()) {
    record([x, w, x16, w16, out = y.shared(), N, Din, Dout] {
      if (!out->grad.defined()) return;
      Tensor dy16 = out->grad.to(DType::BF16);
      release(out);
      if (w.requires_grad()) {
        float beta = grad_beta(w);
        ops::gemm_bf16(true, false, Dout, Din, N, 1.0f, dy16.bf16(), Dout, x16.bf16(), Din, beta, w.grad().f32(), Din);
      }
      if (x.requires_grad()) {
        float beta = grad_beta(x);
        ops::gemm_bf16(false, false, N, Din, Dout, 1.0f, dy16.bf16(), Dout, w16.bf16(), Din, beta, x.grad().f32(), Din);
      }
    });
  }
  return y;
}

}  // namespace

Var linear(const Var& x, const Var& w) {
  int64_t N = x.dim(0), Din = x.dim(1), Dout = w.dim(0);
  SPEEDLM_ASSERT(w.dim(1) == Din, "linear: x {} vs w {}", shape_str(x.shape()), shape_str(w.shape()));
  if (matmul_precision() == MatmulPrecision::Bf16 && N > 1) return linear_bf16(x, w);
  Var y(Tensor::empty({N, Dout}), needs_grad({&x, &w}));
  ops::gemm(false, true, N, Dout, Din, 1.0f, x.value().f32(), Din, w.value().f32(), Din, 0.0f, y.value().f32(), Dout);
  if (y.requires_grad()) {
    record([x, w, out = y.shared(), N, Din, Dout] {
      if (!out->grad.defined()) return;
      const float* dy = out->grad.f32();
      if (w.requires_grad()) {
        // dW (+)= dy^T x
        float beta = grad_beta(w);
        ops::gemm(true, false, Dout, Din, N, 1.0f, dy, Dout, x.value().f32(), Din, beta, w.grad().f32(), Din);
      }
      if (x.requires_grad()) {
        // dx (+)= dy W
        float beta = grad_beta(x);
        ops::gemm(false, false, N, Din, Dout, 1.0f, dy, Dout, w.value().f32(), Din, beta, x.grad().f32(), Din);
      }
      release(out);
    });
  }
  return y;
}

Var embedding(const Tensor& ids, const Var& w) {
  int64_t N = ids.numel(), D = w.dim(1);
  Var y(Tensor::empty({N, D}), needs_grad({&w}));
  ops::embedding_fast_fwd(ids.i32(), N, w.value().f32(), D, y.value().f32());
  if (y.requires_grad()) {
    record([ids, w, out = y.shared(), N, D] {
      if (!out->grad.defined()) return;
      ops::embedding_fast_bwd(ids.i32(), N, out->grad.f32(), w.dim(0), D, w.grad_buffer().f32());
      release(out);
    });
  }
  return y;
}

Var rmsnorm(const Var& x, const Var& w, float eps) {
  int64_t N = x.dim(0), D = x.dim(1);
  Var y(Tensor::empty({N, D}), needs_grad({&x, &w}));
  Tensor rstd = Tensor::empty({N});
  ops::RmsNormParams p{eps};
  // In bf16 mode the output feeds bf16 matmuls: write its bf16 copy while each row is in cache.
  if (matmul_precision() == MatmulPrecision::Bf16 && N > 1) y.impl()->value_bf16 = Tensor::empty({N, D}, DType::BF16);
  uint16_t* y16 = y.impl()->value_bf16.defined() ? y.impl()->value_bf16.bf16() : nullptr;
  ops::rmsnorm_fast_fwd(p, x.value().f32(), w.value().f32(), N, D, y.value().f32(), rstd.f32(), y16);
  if (y.requires_grad()) {
    record([x, w, rstd, p, out = y.shared(), N, D] {
      if (!out->grad.defined()) return;
      Tensor dw_scratch;
      float* dw = w.requires_grad() ? w.grad_buffer().f32() : (dw_scratch = Tensor::zeros({D})).f32();
      // Accumulates straight into x's gradient when other consumers (the residual stream) wrote it.
      bool accumulate = x.grad().defined();
      if (!accumulate) x.impl()->grad = Tensor::empty(x.shape());
      ops::rmsnorm_fast_bwd(p, x.value().f32(), w.value().f32(), rstd.f32(), out->grad.f32(), N, D, x.grad().f32(),
                            dw, accumulate);
      release(out);
    });
  }
  return y;
}

Var swiglu(const Var& gu) {
  int64_t N = gu.dim(0), F = gu.dim(1) / 2;
  Var h(Tensor::empty({N, F}), needs_grad({&gu}));
  ops::swiglu_fast_fwd(gu.value().f32(), N, F, h.value().f32());
  if (h.requires_grad()) {
    record([gu, out = h.shared(), N, F] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(gu);
      ops::swiglu_fast_bwd(gu.value().f32(), out->grad.f32(), N, F, d.target.f32());
      commit(gu, d);
      release(out);
    });
  }
  return h;
}

Var add(const Var& a, const Var& b) {
  SPEEDLM_ASSERT(a.value().same_shape(b.value()), "add: {} vs {}", shape_str(a.shape()), shape_str(b.shape()));
  Var y(Tensor::empty(a.shape()), needs_grad({&a, &b}));
  ops::add_fast_fwd(a.value().f32(), b.value().f32(), a.value().numel(), y.value().f32());
  if (y.requires_grad()) {
    record([a, b, out = y.shared()] {
      if (!out->grad.defined()) return;
      // The gradient passes through unchanged: hand the buffer over when an input has none yet.
      for (const Var* in : {&a, &b}) {
        if (!in->requires_grad()) continue;
        if (!in->grad().defined()) in->impl()->grad = (in == &a && b.requires_grad()) ? out->grad.clone() : out->grad;
        else ops::add_fast_inplace(in->grad().f32(), out->grad.f32(), out->grad.numel());
      }
      release(out);
    });
  }
  return y;
}

Qkv split_qkv_rope(const Var& qkv, const Tensor& pos, const ops::AttentionDims& d, const ops::RopeParams& rope) {
  int64_t N = d.B * d.Tq, H = d.H, KVH = d.KVH, Dh = d.Dh, W = (H + 2 * KVH) * Dh;
  SPEEDLM_ASSERT(qkv.dim(0) == N && qkv.dim(1) == W, "split_qkv_rope: {} for N={} W={}", shape_str(qkv.shape()), N, W);
  bool rg = needs_grad({&qkv});
  Qkv r{Var(Tensor::empty({N, H * Dh}), rg), Var(Tensor::empty({N, KVH * Dh}), rg), Var(Tensor::empty({N, KVH * Dh}), rg)};
  const float* src = qkv.value().f32();
  float *q = r.q.value().f32(), *k = r.k.value().f32(), *v = r.v.value().f32();
  // q and k are rotated straight out of the fused rows; v is a strided copy.
  ops::rope_fast_fwd_rows(rope, src, W, pos.i32(), d.B, d.Tq, H, Dh, q, H * Dh);
  ops::rope_fast_fwd_rows(rope, src + H * Dh, W, pos.i32(), d.B, d.Tq, KVH, Dh, k, KVH * Dh);
  parallel_for(N, 256, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      std::memcpy(v + n * KVH * Dh, src + n * W + (H + KVH) * Dh, sizeof(float) * KVH * Dh);
  });
  if (rg) {
    record([qkv, pos, d, rope, qo = r.q.shared(), ko = r.k.shared(), vo = r.v.shared(), N, H, KVH, Dh, W] {
      GradSink s = grad_sink(qkv);
      float* dst = s.target.f32();
      auto put = [&](const std::shared_ptr<VarImpl>& part, int64_t heads, int64_t col, bool rotate) {
        int64_t w = heads * Dh;
        const float* g = part->grad.defined() ? part->grad.f32() : nullptr;
        if (g && rotate) {
          ops::rope_fast_bwd_rows(rope, g, w, pos.i32(), d.B, d.Tq, heads, Dh, dst + col, W);
        } else {
          parallel_for(N, 256, [&](int64_t n0, int64_t n1) {
            for (int64_t n = n0; n < n1; ++n) {
              if (g) std::memcpy(dst + n * W + col, g + n * w, sizeof(float) * w);
              else std::memset(dst + n * W + col, 0, sizeof(float) * w);
            }
          });
        }
        part->grad = Tensor();
      };
      put(qo, H, 0, true);
      put(ko, KVH, H * Dh, true);
      put(vo, KVH, (H + KVH) * Dh, false);
      commit(qkv, s);
    });
  }
  return r;
}

Var attention(const Var& q, const Var& k, const Var& v, const ops::AttentionDims& d,
              const ops::AttentionParams& params, const Var& sinks) {
  ops::AttentionParams p = params;
  p.bf16 = matmul_precision() == MatmulPrecision::Bf16;
  // f32: the flash form (O(T) memory). bf16: the plain form, whose bf16 GEMMs run on AMX and
  // measured faster than f32 flash at every benchmarked length (docs/BENCHMARKS.md).
  const auto fwd = p.bf16 ? ops::attention_plain_fwd : ops::attention_flash_fwd;
  const auto bwd = p.bf16 ? ops::attention_plain_bwd : ops::attention_flash_bwd;
  const float* s = sinks.defined() ? sinks.value().f32() : nullptr;
  Var o(Tensor::empty({d.B * d.Tq, d.H * d.Dh}), needs_grad({&q, &k, &v, &sinks}));
  Tensor lse = Tensor::empty({d.B, d.H, d.Tq});
  fwd(p, d, q.value().f32(), k.value().f32(), v.value().f32(), o.value().f32(), lse.f32(), s);
  if (o.requires_grad()) {
    record([q, k, v, sinks, d, p, lse, bwd, out = o.shared()] {
      if (!out->grad.defined()) return;
      GradSink dq = grad_sink(q), dk = grad_sink(k), dv = grad_sink(v);
      const bool d_sinks = sinks.requires_grad();
      GradSink ds = d_sinks ? grad_sink(sinks) : GradSink{};
      bwd(p, d, q.value().f32(), k.value().f32(), v.value().f32(), out->value.f32(), lse.f32(), out->grad.f32(),
          dq.target.f32(), dk.target.f32(), dv.target.f32(), sinks.defined() ? sinks.value().f32() : nullptr,
          d_sinks ? ds.target.f32() : nullptr);
      commit(q, dq);
      commit(k, dk);
      commit(v, dv);
      if (d_sinks) commit(sinks, ds);
      release(out);
    });
  }
  return o;
}

Var cross_entropy(const Var& logits, const Tensor& targets, const ops::CrossEntropyParams& p) {
  int64_t N = logits.dim(0), V = logits.dim(1);
  Tensor loss_rows = Tensor::empty({N}), lse = Tensor::empty({N});
  ops::cross_entropy_fast_fwd(p, logits.value().f32(), targets.i32(), N, V, loss_rows.f32(), lse.f32());
  int64_t count = 0;
  float mean = ops::cross_entropy_mean(p, loss_rows.f32(), targets.i32(), N, count);
  Var loss(Tensor::full({1}, mean), needs_grad({&logits}));
  if (loss.requires_grad() && count > 0) {
    record([logits, targets, lse, p, out = loss.shared(), N, V, count] {
      Tensor d_rows = Tensor::full({N}, out->grad.f32()[0] / static_cast<float>(count));
      // The logits are dead after this point: the backward runs in place over them
      // when the logits have no gradient yet, saving an [N, V] buffer.
      bool in_place = !logits.grad().defined();
      Tensor d = in_place ? logits.value() : Tensor::empty(logits.shape());
      ops::cross_entropy_fast_bwd(p, logits.value().f32(), targets.i32(), lse.f32(), d_rows.f32(), N, V, d.f32());
      if (in_place) logits.impl()->grad = d;
      else ops::add_fast_inplace(logits.grad().f32(), d.f32(), d.numel());
      release(out);
    });
  }
  return loss;
}

}  // namespace speedlm::ag
