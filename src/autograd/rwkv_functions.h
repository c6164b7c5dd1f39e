// Differentiable element-wise pieces of the RWKV-7 time mix (algorithms.md §6.1) on [N, F]
// activations, N = B*T. Row vectors ([F]) broadcast over the N rows.
#pragma once

#include "autograd/var.h"

namespace speedlm::ag {

Var tanh(const Var& x);
// y = x + b.  b: [F]
Var add_row(const Var& x, const Var& b);
// y = a o b (same shape).
Var mul(const Var& a, const Var& b);
// y = x o w.  w: [F]
Var mul_row(const Var& x, const Var& w);
// y = x + d o mu (the token-shift interpolation, d = x_{t-1} - x_t).  mu: [F]
Var addcmul_row(const Var& x, const Var& d, const Var& mu);
// y = a + (b - a) o t (same shapes).
Var lerp(const Var& a, const Var& b, const Var& t);
// y = s x for a constant s.
Var scale(const Var& x, float s);
// Token shift d_t = x_{t-1} - x_t per sequence; x_{-1} = prev[b] ([B, F], not differentiated) or 0
// when prev is undefined.  x: [B*T, F]
Var token_shift(const Var& x, int64_t B, int64_t T, const Tensor& prev);
// y = k o (1 + (a - 1) o ka) (RWKV-7's key with the in-context rate).  ka: [F]
Var rwkv_key(const Var& k, const Var& a, const Var& ka);
// Per-head GroupNorm (mean and variance over each head's F/H columns) with affine w, b: [F].
Var group_norm_heads(const Var& x, int64_t H, const Var& w, const Var& b, float eps);
// The RWKV-7 bonus y[h, :] = (sum_i r_i k_i rk_i over head h) v[h, :].  r, k, v: [N, F]  rk: [F]
Var rwkv_bonus(const Var& r, const Var& k, const Var& v, const Var& rk, int64_t H);

}  // namespace speedlm::ag
