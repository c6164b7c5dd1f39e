// Differentiable functions over Var, one per op; each calls the op's fast forward
// and records a closure that calls its fast backward. Activations are 2-D
// [rows, features] with rows = B*T; the per-head layout [B, T, H, Dh] is the same
// memory as [B*T, H*Dh].
#pragma once

#include "autograd/var.h"
#include "ops/attention/attention/attention.h"
#include "ops/loss/cross_entropy/cross_entropy.h"
#include "ops/pos/rope/rope.h"

namespace speedlm::ag {

// y = x W^T.  x: [N, Din]  w: [Dout, Din]  y: [N, Dout]
Var linear(const Var& x, const Var& w);
// ids: [N] i32 (not differentiable)  w: [V, D]  ->  [N, D]
Var embedding(const Tensor& ids, const Var& w);
// x: [N, D]  w: [D]
Var rmsnorm(const Var& x, const Var& w, float eps);
// gu: [N, 2F] -> [N, F]
Var swiglu(const Var& gu);
// a, b: same shape
Var add(const Var& a, const Var& b);

struct Qkv {
  Var q, k, v;  // [B*T, H*Dh], [B*T, KVH*Dh], [B*T, KVH*Dh]
};
// Splits a fused projection [B*T, (H + 2 KVH) * Dh] into q | k | v and applies RoPE
// to q and k at positions pos: [B, T] i32.
Qkv split_qkv_rope(const Var& qkv, const Tensor& pos, const ops::AttentionDims& d, const ops::RopeParams& rope);
// q: [B*Tq, H*Dh]  k, v: [B*Tk, KVH*Dh]  sinks: [H] or undefined  ->  [B*Tq, H*Dh]
Var attention(const Var& q, const Var& k, const Var& v, const ops::AttentionDims& d, const ops::AttentionParams& p,
              const Var& sinks = Var());
// logits: [N, V]  targets: [N] i32  ->  scalar mean loss over non-ignored rows
Var cross_entropy(const Var& logits, const Tensor& targets, const ops::CrossEntropyParams& p);

// Fused blocks (fused.cpp): one tape node where the composition's granularity costs speed.
// In the bf16 matmul mode the intermediates that only feed matmuls (SwiGLU's h and d(gate|up),
// the logits' gradient) are written once, in bf16; results equal the composition bit for bit.
// Elsewhere they are the composition itself.
// linear(swiglu(linear(x, w_gate_up)), w_down).  x: [N, D]  w_gate_up: [2F, D]  w_down: [D, F]
Var swiglu_mlp(const Var& x, const Var& w_gate_up, const Var& w_down);
// cross_entropy(linear(x, w), targets).  x: [N, D]  w: [V, D]  targets: [N] i32
Var linear_cross_entropy(const Var& x, const Var& w, const Tensor& targets, const ops::CrossEntropyParams& p);

}  // namespace speedlm::ag
