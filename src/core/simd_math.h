// Vectorisable float math for kernels: plain scalar code that GCC turns into SIMD inside
// `#pragma omp simd` loops (libm's expf only vectorises under -ffast-math, which we do not use).
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

namespace speedlm {

// exp(x) for x <= 88 with relative error ~1 ulp (Cephes expf: x = n ln2 + r, |r| <= ln2/2,
// degree-7 polynomial for e^r, 2^n built in the exponent bits). Callers pass x <= 0 (softmax
// after max subtraction, sigmoid of -|g|). Below -87.3 the input is clamped so 2^n stays a
// normal float: exp(-1000) returns ~1e-38 instead of 0, harmless next to the O(1) terms these
// kernels add it to. Only the lower bound is clamped: a second clamp makes GCC duplicate the
// vector loop body per clamped path (jump threading), doubling its length.
inline float exp_f32(float x) {
  constexpr float kLog2e = 1.44269504088896341f, kRound = 12582912.0f;  // 1.5 * 2^23
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  x = std::max(x, -87.3f);
  float n = (x * kLog2e + kRound) - kRound;  // round to nearest
  float r = std::fma(n, -kLn2Hi, x);
  r = std::fma(n, -kLn2Lo, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  float er = std::fma(p, r * r, r) + 1.0f;
  return er * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

// sigmoid(g) = 1 / (1 + e^-g) from e = exp(-|g|) <= 1: no overflow, and s ~ e^g stays
// accurate (relative) for very negative g.
inline float sigmoid_f32(float g) {
  float e = exp_f32(-std::abs(g));
  float inv = 1.0f / (1.0f + e);
  return g >= 0.0f ? inv : e * inv;
}

}  // namespace speedlm
