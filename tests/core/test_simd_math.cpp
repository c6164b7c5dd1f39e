// The vectorisable log1p and softplus of core/simd_math.h against libm in double: the error
// bounds their comments state, and softplus at the tails (e^u for u << 0, u for u >> 0,
// no overflow past exp's range).
#include <gtest/gtest.h>

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "core/simd_math.h"

namespace speedlm {
namespace {

// |y - ref| in units of the float ulp at ref.
double ulps(float y, double ref) {
  const float r = std::fabs(static_cast<float>(ref));
  return std::fabs(y - ref) / (std::nextafter(r, INFINITY) - r);
}

TEST(SimdMath, Log1pWithinOneUlpOnZeroToOne) {
  EXPECT_EQ(log1p_f32(0.0f), 0.0f);
  double worst = 0.0;
  // Every 61st float in [0, 1]: all binades down to the subnormals.
  for (uint32_t b = 1; b <= std::bit_cast<uint32_t>(1.0f); b += 61) {
    const float x = std::bit_cast<float>(b);
    worst = std::max(worst, ulps(log1p_f32(x), std::log1p(static_cast<double>(x))));
  }
  EXPECT_LE(worst, 1.0);
}

TEST(SimdMath, SoftplusMatchesLibmAcrossTheRange) {
  double worst = 0.0;
  for (float u = -87.0f; u < 120.0f; u += std::max(1e-6f, std::fabs(u) * 3e-5f)) {
    const double e = std::exp(static_cast<double>(u));
    const double ref = u > 30.0f ? u + 1.0 / e : std::log1p(e);
    worst = std::max(worst, ulps(softplus_f32(u), ref));
  }
  EXPECT_LE(worst, 2.0);
}

TEST(SimdMath, SoftplusTails) {
  // u << 0: softplus(u) ~ e^u with relative accuracy.
  for (float u : {-20.0f, -50.0f, -80.0f, -87.0f})
    EXPECT_LE(ulps(softplus_f32(u), std::exp(static_cast<double>(u))), 2.0) << u;
  // Past exp_f32's clamp: tiny, positive, never NaN.
  for (float u : {-88.0f, -1000.0f, -FLT_MAX, -INFINITY}) {
    EXPECT_GE(softplus_f32(u), 0.0f) << u;
    EXPECT_LE(softplus_f32(u), 1.3e-38f) << u;
  }
  // u >> 0: exactly u, including beyond where e^u overflows (u > 88.72).
  for (float u : {20.0f, 88.0f, 88.72f, 88.73f, 100.0f, 1e30f, FLT_MAX, INFINITY}) EXPECT_EQ(softplus_f32(u), u) << u;
}

}  // namespace
}  // namespace speedlm
