// causal_conv1d checks 4 and 5: fast == step == reference, and a sequence split in two calls
// (the second given the first's final window) equals one call; argument validation.
#include <gtest/gtest.h>

#include "linear_op_checks.h"
#include "ops/conv/causal_conv1d/causal_conv1d.h"

namespace speedlm::ops {
namespace {

using namespace testing;

Vec ref_fwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const Vec& x, const Vec& w, const Vec& b,
            const Vec* s0) {
  std::vector<double> xd(x.begin(), x.end()), wd(w.begin(), w.end()), bd(b.begin(), b.end()), y(x.size());
  std::vector<double> sd = s0 ? std::vector<double>(s0->begin(), s0->end()) : std::vector<double>();
  causal_conv1d_ref_fwd<double>(p, d, xd.data(), wd.data(), bd.data(), s0 ? sd.data() : nullptr, y.data());
  return {y.begin(), y.end()};
}

TEST(CausalConv1d, FastEqualsStepEqualsReference) {
  for (int64_t W : {2, 3, 4})
    for (bool silu : {true, false}) {
      SCOPED_TRACE("W=" + std::to_string(W) + " silu=" + std::to_string(silu));
      CausalConv1dDims d{2, 37, 24, W};
      CausalConv1dParams p{silu};
      Vec x = randn(d.B * d.T * d.D, 1), w = randn(d.D * W, 2, 0.5f), b = randn(d.D, 3);
      Vec ref = ref_fwd(p, d, x, w, b, nullptr), fast(x.size()), step(x.size());
      causal_conv1d_fast_fwd(p, d, x.data(), w.data(), b.data(), nullptr, fast.data());
      Vec window(d.B * (W - 1) * d.D, 0.0f);
      causal_conv1d_step_fwd(p, d, x.data(), w.data(), b.data(), window.data(), step.data());
      EXPECT_LE(rms_rel(fast, ref), 1e-6);
      EXPECT_LE(rms_rel(step, ref), 1e-6);
      // The rolled window is the final window.
      Vec fin(window.size());
      causal_conv1d_final_window(d, x.data(), nullptr, fin.data());
      EXPECT_EQ(fin, window);
    }
}

TEST(CausalConv1d, SplitSequenceContinuity) {
  for (int64_t T1 : {1, 2, 17}) {
    SCOPED_TRACE("T1=" + std::to_string(T1));
    const int64_t B = 2, T = 30, D = 16, W = 4;
    CausalConv1dParams p{true};
    Vec x = randn(B * T * D, 4), w = randn(D * W, 5, 0.5f), b = randn(D, 6);
    Vec full(x.size());
    causal_conv1d_fast_fwd(p, {B, T, D, W}, x.data(), w.data(), b.data(), nullptr, full.data());
    Vec x1 = slice_t(x, B, T, D, 0, T1), x2 = slice_t(x, B, T, D, T1, T), y1(x1.size()), y2(x2.size());
    Vec win(B * (W - 1) * D);
    causal_conv1d_fast_fwd(p, {B, T1, D, W}, x1.data(), w.data(), b.data(), nullptr, y1.data());
    causal_conv1d_final_window({B, T1, D, W}, x1.data(), nullptr, win.data());
    causal_conv1d_fast_fwd(p, {B, T - T1, D, W}, x2.data(), w.data(), b.data(), win.data(), y2.data());
    EXPECT_LE(rms_rel(y1, slice_t(full, B, T, D, 0, T1)), 1e-7);
    EXPECT_LE(rms_rel(y2, slice_t(full, B, T, D, T1, T)), 1e-7);
    // Decoding the rest token by token from the same window gives the same outputs.
    Vec step(x2.size());
    causal_conv1d_step_fwd(p, {B, T - T1, D, W}, x2.data(), w.data(), b.data(), win.data(), step.data());
    EXPECT_LE(rms_rel(step, y2), 1e-6);
  }
}

TEST(CausalConv1d, CheckNamesTheField) {
  Status s = causal_conv1d_check({}, {1, 4, 8, 9});
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message().rfind("[causal_conv1d] kernel = 9", 0), 0u) << s.message();
  EXPECT_TRUE(causal_conv1d_check({}, {1, 4, 8, 4}).is_ok());
}

}  // namespace
}  // namespace speedlm::ops
