// Fused blocks for the bf16 matmul mode. The composed forms convert each matmul operand to
// bf16 in a pass of its own: SwiGLU writes h in f32 and the next linear reads it back to round
// it, the SwiGLU backward writes d(gate|up) in f32 for the linear backward to round, and the
// loss backward writes [N, V] f32 logit gradients for the head to round. Here the kernels
// round as they store, so those f32 tensors are never written or read again. The arithmetic
// and the rounding (round to nearest even) are the composition's, so the results are equal.
#include "autograd/functions.h"
#include "autograd/grad_sink.h"
#include "ops/activation/swiglu/swiglu.h"
#include "ops/linalg/gemm/gemm.h"

namespace speedlm::ag {

namespace {

bool fuse_bf16(int64_t rows) { return matmul_precision() == MatmulPrecision::Bf16 && rows > 1; }

}  // namespace

Var swiglu_mlp(const Var& x, const Var& w_gate_up, const Var& w_down) {
  const int64_t N = x.dim(0), D = x.dim(1), F = w_down.dim(1);
  SPEEDLM_ASSERT(w_gate_up.dim(0) == 2 * F && w_gate_up.dim(1) == D && w_down.dim(0) == D,
                 "swiglu_mlp: x {} w_gate_up {} w_down {}", shape_str(x.shape()), shape_str(w_gate_up.shape()),
                 shape_str(w_down.shape()));
  if (!fuse_bf16(N)) return linear(swiglu(linear(x, w_gate_up)), w_down);
  Tensor x16 = x.value_bf16(), wgu16 = w_gate_up.value_bf16(), wd16 = w_down.value_bf16();
  Tensor gu = Tensor::empty({N, 2 * F}), h16 = Tensor::empty({N, F}, DType::BF16);  // [N, 2F], [N, F]
  ops::gemm_bf16(false, true, N, 2 * F, D, 1.0f, x16.bf16(), D, wgu16.bf16(), D, 0.0f, gu.f32(), 2 * F);
  ops::swiglu_fast_fwd_bf16(gu.f32(), N, F, h16.bf16());
  Var y(Tensor::empty({N, D}), needs_grad({&x, &w_gate_up, &w_down}));
  ops::gemm_bf16(false, true, N, D, F, 1.0f, h16.bf16(), F, wd16.bf16(), F, 0.0f, y.value().f32(), D);
  if (!y.requires_grad()) return y;
  record([x, w_gate_up, w_down, x16, wgu16, wd16, gu, h16, out = y.shared(), N, D, F] {
    if (!out->grad.defined()) return;
    Tensor dy16 = out->grad.to(DType::BF16);  // [N, D]
    release(out);
    if (w_down.requires_grad()) {  // dW_down (+)= dy^T h
      float beta = grad_beta(w_down);
      ops::gemm_bf16(true, false, D, F, N, 1.0f, dy16.bf16(), D, h16.bf16(), F, beta, w_down.grad().f32(), F);
    }
    Tensor dgu16 = Tensor::empty({N, 2 * F}, DType::BF16);  // [N, 2F]
    {
      Tensor dh = Tensor::empty({N, F});  // dh = dy W_down
      ops::gemm_bf16(false, false, N, F, D, 1.0f, dy16.bf16(), D, wd16.bf16(), F, 0.0f, dh.f32(), F);
      ops::swiglu_fast_bwd_bf16(gu.f32(), dh.f32(), N, F, dgu16.bf16());
    }
    if (w_gate_up.requires_grad()) {  // dW_gate_up (+)= dgu^T x
      float beta = grad_beta(w_gate_up);
      ops::gemm_bf16(true, false, 2 * F, D, N, 1.0f, dgu16.bf16(), 2 * F, x16.bf16(), D, beta, w_gate_up.grad().f32(),
                     D);
    }
    if (x.requires_grad()) {  // dx (+)= dgu W_gate_up
      float beta = grad_beta(x);
      ops::gemm_bf16(false, false, N, D, 2 * F, 1.0f, dgu16.bf16(), 2 * F, wgu16.bf16(), D, beta, x.grad().f32(), D);
    }
  });
  return y;
}

Var linear_cross_entropy(const Var& x, const Var& w, const Tensor& targets, const ops::CrossEntropyParams& p) {
  const int64_t N = x.dim(0), D = x.dim(1), V = w.dim(0);
  if (!fuse_bf16(N)) return cross_entropy(linear(x, w), targets, p);
  Tensor x16 = x.value_bf16(), w16 = w.value_bf16();
  Tensor logits = Tensor::empty({N, V}), loss_rows = Tensor::empty({N}), lse = Tensor::empty({N});
  ops::gemm_bf16(false, true, N, V, D, 1.0f, x16.bf16(), D, w16.bf16(), D, 0.0f, logits.f32(), V);
  ops::cross_entropy_fast_fwd(p, logits.f32(), targets.i32(), N, V, loss_rows.f32(), lse.f32());
  int64_t count = 0;
  float mean = ops::cross_entropy_mean(p, loss_rows.f32(), targets.i32(), N, count);
  Var loss(Tensor::full({1}, mean), needs_grad({&x, &w}));
  if (!loss.requires_grad() || count == 0) return loss;
  record([x, w, x16, w16, targets, p, logits, lse, out = loss.shared(), N, D, V, count] {
    Tensor d_rows = Tensor::full({N}, out->grad.f32()[0] / static_cast<float>(count));
    Tensor d16 = Tensor::empty({N, V}, DType::BF16);  // d logits, [N, V]
    // The f32 gradient rows are staged in place over the logits, which are dead after this.
    ops::cross_entropy_fast_bwd(p, logits.f32(), targets.i32(), lse.f32(), d_rows.f32(), N, V, logits.f32(),
                                d16.bf16());
    release(out);
    if (w.requires_grad()) {  // dW (+)= dlogits^T x
      float beta = grad_beta(w);
      ops::gemm_bf16(true, false, V, D, N, 1.0f, d16.bf16(), V, x16.bf16(), D, beta, w.grad().f32(), D);
    }
    if (x.requires_grad()) {  // dx (+)= dlogits W
      float beta = grad_beta(x);
      ops::gemm_bf16(false, false, N, D, V, 1.0f, d16.bf16(), V, w16.bf16(), D, beta, x.grad().f32(), D);
    }
  });
  return loss;
}

}  // namespace speedlm::ag
