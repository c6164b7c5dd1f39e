// Register-blocked small GEMMs for the flash form's tiles, on operands addressed in place:
//   C[M, N] (+)= A[M, K] B[K, N]   with A(m, k) = A[m * a_rs + k * a_cs] (any strides, so A may be a
//   transposed tile) and B, C row-major with row strides ldb, ldc (unit column stride).
// With accumulate, C's rows are first multiplied by row_scale[m] when given (the online-softmax
// rescale of the output accumulator). A micro-kernel keeps a 6 x 64 block of C in AVX-512
// registers over the whole K loop (24 accumulators, one broadcast of A per row and four loads of B
// per k); N tails use masked loads and stores, so B and C need no padding.
#pragma once

#include <cstdint>

namespace speedlm::ops {

void tile_gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B, int64_t ldb,
               float* C, int64_t ldc, bool accumulate, const float* row_scale = nullptr);

}  // namespace speedlm::ops
