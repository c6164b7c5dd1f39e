// RMSNorm: y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps), per row.
//   x: [N, D]   w: [D]   y: [N, D]   rstd: [N] (saved for backward)
// Backward (derivation in README.md):
//   dx = rstd * (dy*w - x * rstd^2 * mean(dy*w*x))     (overwritten)
//   dw += sum_n dy * x * rstd                           (accumulated)
#pragma once

#include <cstdint>

#include "speedlm/tensor.h"

namespace speedlm::ops {

struct RmsNormParams {
  float eps = 1e-5f;
};

// x: [N, D] f32, w: [D] f32, eps finite and > 0.
Status rmsnorm_check(const RmsNormParams& p, const Tensor& x, const Tensor& w);

template <typename T>
void rmsnorm_ref_fwd(const RmsNormParams& p, const T* x, const T* w, int64_t N, int64_t D, T* y, T* rstd);
template <typename T>
void rmsnorm_ref_bwd(const RmsNormParams& p, const T* x, const T* w, const T* dy, int64_t N, int64_t D, T* dx,
                     T* dw);

// y16, when given, also receives y rounded to bf16 ([N, D]): the operand of a following bf16
// matmul, written while the row is in cache instead of by a separate conversion pass.
void rmsnorm_fast_fwd(const RmsNormParams& p, const float* x, const float* w, int64_t N, int64_t D, float* y,
                      float* rstd, uint16_t* y16 = nullptr);
// accumulate_dx: dx += instead of dx = (an input whose gradient other consumers already wrote,
// without a scratch buffer and a second pass to add it).
void rmsnorm_fast_bwd(const RmsNormParams& p, const float* x, const float* w, const float* rstd, const float* dy,
                      int64_t N, int64_t D, float* dx, float* dw, bool accumulate_dx = false);

}  // namespace speedlm::ops
