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

// log1p(x) for 0 <= x <= 1 (Cephes logf polynomial on f in [sqrt(1/2) - 1, sqrt(2) - 1]).
// The reduction is exact where libm's would round 1 + x: f = x below sqrt(2) - 1; above,
// log1p(x) = ln 2 + log(1 + f) with f = (x - 1) / 2, whose rounding error is added back to
// first order. Max error 1 ulp against std::log1p over [0, 1] (tests/core/test_simd_math.cpp).
inline float log1p_f32(float x) {
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  const bool big = x > 0.41421356f;
  const float half = 0.5f * x, fb = half - 0.5f;
  const float err = half - (fb + 0.5f);  // Fast2Sum: fb + err == x/2 - 1/2 exactly
  const float f = big ? fb : x, k = big ? 1.0f : 0.0f, c = big ? err / (1.0f + fb) : 0.0f;
  const float z = f * f;
  float p = 7.0376836292e-2f;
  p = std::fma(p, f, -1.1514610310e-1f);
  p = std::fma(p, f, 1.1676998740e-1f);
  p = std::fma(p, f, -1.2420140846e-1f);
  p = std::fma(p, f, 1.4249322787e-1f);
  p = std::fma(p, f, -1.6668057665e-1f);
  p = std::fma(p, f, 2.0000714765e-1f);
  p = std::fma(p, f, -2.4999993993e-1f);
  p = std::fma(p, f, 3.3333331174e-1f);
  float y = p * f * z;
  y = std::fma(k, kLn2Lo, y + c);
  y = std::fma(-0.5f, z, y);
  return std::fma(k, kLn2Hi, f + y);
}

// softplus(u) = log(1 + e^u) = max(u, 0) + log1p(e^-|u|): no overflow for large u (returns u
// once e^-u is below half an ulp of u), relative accuracy ~e^u for very negative u. Below
// u = -87.3 exp_f32 clamps, so the result is ~1.2e-38 instead of a subnormal.
inline float softplus_f32(float u) { return std::max(u, 0.0f) + log1p_f32(exp_f32(-std::abs(u))); }

}  // namespace speedlm
