// GEMM for the per-chunk shapes of the chunked linear recurrences (M, N, K of 1..128, one thread):
// C[M, N] = alpha op(A) op(B) + beta C, row-major, the contract of ops::gemm. At 64 x 64 x 64 a
// library call costs a few microseconds of dispatch, about the time of the product itself, and a
// chunk step makes ~10 of them; this one reads op(B) as 16-float rows (packed only when
// transposed or ragged) and runs a 4 x 64 register-blocked kernel (GCC vector extensions:
// AVX-512 under -march=native, split otherwise). C must not overlap A or B.
#pragma once

#include <cstdint>

namespace speedlm::ops {

void small_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace speedlm::ops
