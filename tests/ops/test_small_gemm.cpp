// small_gemm (the per-chunk GEMM of the chunked recurrences) against the reference GEMM: every
// transpose combination, sizes around the 4-row and 16-lane blocks, strided operands, alpha/beta.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/rng.h"
#include "ops/linalg/gemm/gemm.h"
#include "ops/linear/common/small_gemm.h"

namespace speedlm::ops {
namespace {

TEST(SmallGemm, MatchesReferenceGemm) {
  Rng rng(1);
  std::vector<float> a(140 * 150), b(140 * 150), c0(140 * 150);
  for (float& x : a) x = rng.normal();
  for (float& x : b) x = rng.normal();
  for (float& x : c0) x = rng.normal();
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t n : {1, 3, 4, 5, 16, 17, 33, 64, 65, 128})
        for (float beta : {0.0f, 0.5f}) {
          SCOPED_TRACE(::testing::Message() << "ta=" << ta << " tb=" << tb << " n=" << n << " beta=" << beta);
          const int64_t M = n, N = n + 2, K = n + 1;
          std::vector<float> c = c0, ref = c0;
          small_gemm(ta, tb, M, N, K, 0.7f, a.data(), 140, b.data(), 145, beta, c.data(), 150);
          gemm_ref(ta, tb, M, N, K, 0.7f, a.data(), 140, b.data(), 145, beta, ref.data(), 150);
          double err = 0.0;
          for (size_t i = 0; i < c.size(); ++i) err = std::max(err, std::abs(static_cast<double>(c[i]) - ref[i]));
          EXPECT_LE(err, 1e-4 * std::sqrt(static_cast<double>(K)));
        }
}

TEST(SmallGemm, BetaZeroIgnoresNaNInC) {
  std::vector<float> a(8 * 8, 1.0f), b(8 * 8, 1.0f), c(8 * 8, std::numeric_limits<float>::quiet_NaN());
  small_gemm(false, false, 8, 8, 8, 1.0f, a.data(), 8, b.data(), 8, 0.0f, c.data(), 8);
  for (float x : c) EXPECT_EQ(x, 8.0f);
}

}  // namespace
}  // namespace speedlm::ops
