// gemm() cases the registry's shape generator cannot express (strided operands).
#include <gtest/gtest.h>

#include <vector>

#include "ops/linalg/gemm/gemm.h"

namespace speedlm::ops {
namespace {

// M == 1 with a transposed A stored [K, lda], lda > 1: op(A) is a strided column.
TEST(Gemm, SingleRowOfStridedTransposedA) {
  const int64_t N = 5, K = 7, lda = 3;
  std::vector<float> A(K * lda), B(K * N), C(N, -1.0f), expect(N, -1.0f);
  for (size_t i = 0; i < A.size(); ++i) A[i] = 0.25f * static_cast<float>(i % 11) - 1.0f;
  for (size_t i = 0; i < B.size(); ++i) B[i] = 0.5f * static_cast<float>(i % 5) - 0.75f;
  gemm_ref(true, false, 1, N, K, 1.0f, A.data(), lda, B.data(), N, 0.5f, expect.data(), N);
  for (GemmBackend backend : {GemmBackend::Dnnl, GemmBackend::Blas}) {
    set_gemm_backend(backend);
    std::vector<float> c = C;
    gemm(true, false, 1, N, K, 1.0f, A.data(), lda, B.data(), N, 0.5f, c.data(), N);
    for (int64_t j = 0; j < N; ++j) EXPECT_FLOAT_EQ(c[j], expect[j]) << gemm_backend_name(backend) << " j=" << j;
  }
  set_gemm_backend(GemmBackend::Dnnl);
}

}  // namespace
}  // namespace speedlm::ops
