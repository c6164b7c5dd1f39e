// Causal depthwise conv1d with optional SiLU (Mamba-2's and GatedDeltaNet's short conv).
//   x: [B, T, D]   w: [D, W]   bias: [D] (nullptr = none)   y: [B, T, D]
//   s0: [B, W-1, D] the W-1 inputs before x (nullptr = zeros, the start of a sequence)
// p_t[c] = bias[c] + sum_{i<W} w[c, i] x_{t-W+1+i}[c],  y_t = silu(p_t) or p_t.
// Positions before 0 read s0 (row j of s0 is x_{j-W+1}), so a sequence split in two calls,
// the second given the first's final window, equals one call.
// Backward (README.md): dp = dy o silu'(p), dx_s = sum_i w[c, i] dp_{s+W-1-i},
// dw[c, i] = sum_t dp_t x_{t-W+1+i}, dbias = sum_t dp_t; ds0 is dx at the negative positions.
#pragma once

#include <cstdint>

#include "speedlm/tensor.h"

namespace speedlm::ops {

struct CausalConv1dParams {
  bool silu = true;
};

struct CausalConv1dDims {
  int64_t B = 1, T = 0, D = 0, W = 4;
};

Status causal_conv1d_check(const CausalConv1dParams& p, const CausalConv1dDims& d);

template <typename T>
void causal_conv1d_ref_fwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const T* x, const T* w,
                           const T* bias, const T* s0, T* y);
// dbias is written when bias is given, ds0 when s0 is given.
template <typename T>
void causal_conv1d_ref_bwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const T* x, const T* w,
                           const T* bias, const T* s0, const T* dy, T* dx, T* dw, T* dbias, T* ds0);

void causal_conv1d_fast_fwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const float* x, const float* w,
                            const float* bias, const float* s0, float* y);
void causal_conv1d_fast_bwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const float* x, const float* w,
                            const float* bias, const float* s0, const float* dy, float* dx, float* dw, float* dbias,
                            float* ds0);

// Decode: T tokens one at a time; window: [B, W-1, D] (the last W-1 inputs) updated in place.
void causal_conv1d_step_fwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const float* x, const float* w,
                            const float* bias, float* window, float* y);
// The window after x: s_out [B, W-1, D] = the last W-1 rows of concat(s0, x).
void causal_conv1d_final_window(const CausalConv1dDims& d, const float* x, const float* s0, float* s_out);

}  // namespace speedlm::ops
