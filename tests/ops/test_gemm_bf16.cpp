// gemm_bf16: equals a double-precision product of the bf16-rounded operands (its inputs
// are exactly those values, so only f32 accumulation error remains).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "ops/linalg/gemm/gemm.h"
#include "speedlm/tensor.h"

namespace speedlm::ops {
namespace {

TEST(GemmBf16, MatchesDoubleProductOfRoundedOperands) {
  for (auto [ta, tb] : {std::pair{false, false}, {false, true}, {true, false}, {true, true}}) {
    const int64_t M = 37, N = 70, K = 129;
    Rng rng(3);
    std::vector<float> a(M * K), b(K * N), c(M * N, 1.0f);
    for (float& x : a) x = rng.normal();
    for (float& x : b) x = rng.normal();
    std::vector<uint16_t> a16(a.size()), b16(b.size());
    convert_to_bf16(a.data(), a.size(), a16.data());
    convert_to_bf16(b.data(), b.size(), b16.data());
    int64_t lda = ta ? M : K, ldb = tb ? K : N;
    gemm_bf16(ta, tb, M, N, K, 0.5f, a16.data(), lda, b16.data(), ldb, 1.0f, c.data(), N);
    double num = 0, den = 0;
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += static_cast<double>(bf16_to_f32(a16[ta ? k * M + i : i * K + k])) *
                 bf16_to_f32(b16[tb ? j * K + k : k * N + j]);
        double ref = 0.5 * acc + 1.0;
        num += (c[i * N + j] - ref) * (c[i * N + j] - ref), den += ref * ref;
      }
    EXPECT_LE(std::sqrt(num / den), 1e-6) << "ta=" << ta << " tb=" << tb;
  }
}

TEST(GemmBf16, ConversionRoundsToNearestEven) {
  std::vector<float> x = {1.0f, 1.00390625f, 1.01171875f, -2.5f, 3.0e38f, 1e-40f};
  for (int i = 0; i < 40; ++i) x.push_back(static_cast<float>(i) * 0.337f - 5.0f);
  std::vector<uint16_t> y(x.size());
  convert_to_bf16(x.data(), x.size(), y.data());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], f32_to_bf16(x[i])) << x[i];
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.00390625f)), 1.0f);      // tie -> even
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.01171875f)), 1.015625f);  // tie -> even (up)
}

}  // namespace
}  // namespace speedlm::ops
