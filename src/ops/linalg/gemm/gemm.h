// GEMM: C = alpha * op(A) * op(B) + beta * C, row-major, op(X) = X or X^T.
//   op(A): [M, K] (A stored [M, lda] or, transposed, [K, lda])
//   op(B): [K, N] (B stored [K, ldb] or, transposed, [N, ldb])
//   C:     [M, N] stored [M, ldc]
// Backward of C = A B (beta = 0): dA = dC B^T, dB = A^T dC, themselves GEMMs.
//
// Backends (one process-wide choice, default oneDNN):
//   Dnnl: oneDNN matmul, one cached primitive per (shape, strides, alpha, beta).
//   Blas: OpenBLAS (OpenMP flavour) cblas_sgemm.
//   Ref:  plain loops with double accumulators (the spec; slow).
// M == 1 never goes through a GEMM library: it is a bandwidth-bound GEMV, done here.
// Called inside an OpenMP parallel region, every backend runs on the calling thread.
#pragma once

#include <cstdint>
#include <string>

#include "speedlm/status.h"

namespace speedlm::ops {

enum class GemmBackend { Dnnl, Blas, Ref };
void set_gemm_backend(GemmBackend backend);
GemmBackend gemm_backend();
const char* gemm_backend_name(GemmBackend backend);
Result<GemmBackend> parse_gemm_backend(const std::string& name);

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Same contract, one implementation each (gemm() dispatches).
void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_dnnl(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_blas(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// bf16 operands (raw bf16 bits), f32 accumulation and output: the same contract as gemm()
// with A and B rounded to bf16. Runs on oneDNN (AVX512-BF16 / AMX where the CPU has them).
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
               int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc);

// y = alpha * op(B)^T x + beta * y for one row x (the M == 1 case).
void gemv_rows(bool trans_b, int64_t N, int64_t K, float alpha, const float* x, const float* B, int64_t ldb,
               float beta, float* y);

}  // namespace speedlm::ops
