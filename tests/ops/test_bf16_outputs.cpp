// Kernels that round their output to bf16 as they store it (the operands of bf16 matmuls)
// must give exactly the bf16 rounding of their f32 form: same arithmetic, same rounding.
#include <gtest/gtest.h>

#include <vector>

#include "core/rng.h"
#include "ops/activation/swiglu/swiglu.h"
#include "ops/loss/cross_entropy/cross_entropy.h"
#include "ops/norm/rmsnorm/rmsnorm.h"

namespace speedlm::ops {
namespace {

std::vector<float> normal(size_t n, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = scale * rng.normal();
  return v;
}

// Bit-exact: every element of out16 is the bf16 rounding of ref.
void expect_rounding_of(const std::vector<float>& ref, const std::vector<uint16_t>& out16) {
  ASSERT_EQ(ref.size(), out16.size());
  std::vector<uint16_t> want(ref.size());
  convert_to_bf16(ref.data(), static_cast<int64_t>(ref.size()), want.data());
  int64_t mismatches = 0;
  for (size_t i = 0; i < ref.size(); ++i) mismatches += want[i] != out16[i];
  EXPECT_EQ(mismatches, 0) << "of " << ref.size();
  // Guards against both sides being trivially zero.
  int64_t nonzero = 0;
  for (uint16_t b : out16) nonzero += (b & 0x7fff) != 0;
  EXPECT_GT(nonzero, static_cast<int64_t>(ref.size()) / 2);
}

TEST(Bf16Outputs, RmsNormSecondOutputIsTheRoundingOfY) {
  const int64_t N = 37, D = 129;  // odd sizes exercise the scalar tails
  auto x = normal(N * D, 1), w = normal(D, 2);
  std::vector<float> y(N * D), rstd(N), y_plain(N * D), rstd_plain(N);
  std::vector<uint16_t> y16(N * D);
  RmsNormParams p;
  rmsnorm_fast_fwd(p, x.data(), w.data(), N, D, y.data(), rstd.data(), y16.data());
  rmsnorm_fast_fwd(p, x.data(), w.data(), N, D, y_plain.data(), rstd_plain.data());
  EXPECT_EQ(y, y_plain);
  expect_rounding_of(y, y16);
}

TEST(Bf16Outputs, SwiGluForwardAndBackward) {
  for (int64_t F : {1, 31, 512, 1300}) {  // below, at and across the kernel's 512-value spans
    const int64_t N = 9;
    auto gu = normal(N * 2 * F, 3 + F, 3.0f), dh = normal(N * F, 4 + F);
    std::vector<float> h(N * F), dgu(N * 2 * F);
    std::vector<uint16_t> h16(N * F), dgu16(N * 2 * F);
    swiglu_fast_fwd(gu.data(), N, F, h.data());
    swiglu_fast_fwd_bf16(gu.data(), N, F, h16.data());
    swiglu_fast_bwd(gu.data(), dh.data(), N, F, dgu.data());
    swiglu_fast_bwd_bf16(gu.data(), dh.data(), N, F, dgu16.data());
    SCOPED_TRACE(F);
    expect_rounding_of(h, h16);
    expect_rounding_of(dgu, dgu16);
  }
}

TEST(Bf16Outputs, CrossEntropyBackwardSecondOutput) {
  const int64_t N = 11, V = 1000;
  auto logits = normal(N * V, 5, 4.0f);
  std::vector<int32_t> targets(N);
  for (int64_t n = 0; n < N; ++n) targets[n] = static_cast<int32_t>((n * 97) % V);
  targets[3] = -100;  // an ignored row: zero gradient in both outputs
  std::vector<float> loss(N), lse(N), d_loss(N, 1.0f / N), d(N * V);
  std::vector<uint16_t> d16(N * V, 0xffff);
  CrossEntropyParams p;
  cross_entropy_fast_fwd(p, logits.data(), targets.data(), N, V, loss.data(), lse.data());
  std::vector<float> d_plain(N * V);
  cross_entropy_fast_bwd(p, logits.data(), targets.data(), lse.data(), d_loss.data(), N, V, d_plain.data());
  cross_entropy_fast_bwd(p, logits.data(), targets.data(), lse.data(), d_loss.data(), N, V, d.data(), d16.data());
  EXPECT_EQ(d, d_plain);
  std::vector<uint16_t> want(N * V);
  convert_to_bf16(d.data(), N * V, want.data());
  EXPECT_EQ(d16, want);
  for (int64_t j = 0; j < V; ++j) ASSERT_EQ(d16[3 * V + j], 0);
}

}  // namespace
}  // namespace speedlm::ops
