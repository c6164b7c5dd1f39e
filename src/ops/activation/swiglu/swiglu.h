// SwiGLU on a fused gate|up projection: h = silu(g) * u.
//   gu: [N, 2F], gate g = gu[:, :F], up u = gu[:, F:]
//   h:  [N, F]
// Backward: dg = dh * u * silu'(g), du = dh * silu(g),
//   silu(g) = g * s, silu'(g) = s * (1 + g * (1 - s)), s = sigmoid(g).
#pragma once

#include <cstdint>

#include "speedlm/tensor.h"

namespace speedlm::ops {

// gu: [N, 2F] f32 with F >= 1.
Status swiglu_check(const Tensor& gu);

template <typename T>
void swiglu_ref_fwd(const T* gu, int64_t N, int64_t F, T* h);
template <typename T>
void swiglu_ref_bwd(const T* gu, const T* dh, int64_t N, int64_t F, T* dgu);

void swiglu_fast_fwd(const float* gu, int64_t N, int64_t F, float* h);
void swiglu_fast_bwd(const float* gu, const float* dh, int64_t N, int64_t F, float* dgu);  // dgu: [N, 2F]
// The same math with the output rounded to bf16 (raw bits) as it is stored: h and dgu are the
// operands of the bf16 matmuls around SwiGLU, so no f32 copy of them is ever written.
void swiglu_fast_fwd_bf16(const float* gu, int64_t N, int64_t F, uint16_t* h);
void swiglu_fast_bwd_bf16(const float* gu, const float* dh, int64_t N, int64_t F, uint16_t* dgu);

}  // namespace speedlm::ops
