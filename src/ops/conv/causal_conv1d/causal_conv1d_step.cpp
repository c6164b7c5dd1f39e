// Decode form of the causal conv1d: one token at a time against the window of the last W-1
// inputs, which then rolls by one row.
#include <cstring>
#include <vector>

#include "core/simd_math.h"
#include "ops/conv/causal_conv1d/causal_conv1d.h"

namespace speedlm::ops {

void causal_conv1d_step_fwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const float* x, const float* w,
                            const float* bias, float* window, float* y) {
  const int64_t D = d.D, W = d.W;
  std::vector<float> wt(static_cast<size_t>(W * D));
  for (int64_t c = 0; c < D; ++c)
    for (int64_t i = 0; i < W; ++i) wt[i * D + c] = w[c * W + i];
  for (int64_t b = 0; b < d.B; ++b) {
    float* win = window + b * (W - 1) * D;
    for (int64_t t = 0; t < d.T; ++t) {
      const float* xt = x + (b * d.T + t) * D;
      float* yt = y + (b * d.T + t) * D;
      const float* last = wt.data() + (W - 1) * D;
#pragma omp simd
      for (int64_t c = 0; c < D; ++c) yt[c] = (bias ? bias[c] : 0.0f) + last[c] * xt[c];
      for (int64_t i = 0; i < W - 1; ++i) {
        const float *wi = wt.data() + i * D, *xr = win + i * D;
#pragma omp simd
        for (int64_t c = 0; c < D; ++c) yt[c] += wi[c] * xr[c];
      }
      if (p.silu) {
#pragma omp simd
        for (int64_t c = 0; c < D; ++c) yt[c] *= sigmoid_f32(yt[c]);
      }
      if (W > 1) {
        std::memmove(win, win + D, sizeof(float) * (W - 2) * D);
        std::memcpy(win + (W - 2) * D, xt, sizeof(float) * D);
      }
    }
  }
}

}  // namespace speedlm::ops
