#include "ops/linalg/gemm/gemm.h"

#include <atomic>
#include <vector>

#include "core/parallel.h"

namespace speedlm::ops {

namespace {
std::atomic<GemmBackend> g_backend{GemmBackend::Dnnl};
}

void set_gemm_backend(GemmBackend backend) { g_backend = backend; }
GemmBackend gemm_backend() { return g_backend; }

const char* gemm_backend_name(GemmBackend backend) {
  switch (backend) {
    case GemmBackend::Dnnl: return "onednn";
    case GemmBackend::Blas: return "openblas";
    case GemmBackend::Ref: return "ref";
  }
  return "?";
}

Result<GemmBackend> parse_gemm_backend(const std::string& name) {
  for (GemmBackend b : {GemmBackend::Dnnl, GemmBackend::Blas, GemmBackend::Ref})
    if (name == gemm_backend_name(b)) return b;
  return Status::errorf("gemm", "backend = '{}': expected onednn, openblas or ref", name);
}

void gemv_rows(bool trans_b, int64_t N, int64_t K, float alpha, const float* x, const float* B, int64_t ldb,
               float beta, float* y) {
  if (trans_b) {
    // B stored [N, ldb]: y[j] = dot(x, B[j, :]); contiguous rows, split over threads.
    parallel_for(N, 64, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        const float* b = B + j * ldb;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t k = 0; k < K; ++k) acc += x[k] * b[k];
        y[j] = alpha * acc + (beta == 0.0f ? 0.0f : beta * y[j]);
      }
    });
    return;
  }
  // B stored [K, ldb]: y = sum_k x[k] B[k, :]; split the columns over threads.
  parallel_for(N, 256, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) y[j] = beta == 0.0f ? 0.0f : beta * y[j];
    for (int64_t k = 0; k < K; ++k) {
      float xk = alpha * x[k];
      const float* b = B + k * ldb;
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) y[j] += xk * b[j];
    }
  });
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  GemmBackend backend = g_backend;
  if (backend == GemmBackend::Ref) return gemm_ref(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  if (M == 1) {
    if (!trans_a || lda == 1) return gemv_rows(trans_b, N, K, alpha, A, B, ldb, beta, C);
    // op(A) is column 0 of A stored [K, lda]: gather it into a contiguous row first.
    thread_local std::vector<float> row;
    row.resize(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) row[k] = A[k * lda];
    return gemv_rows(trans_b, N, K, alpha, row.data(), B, ldb, beta, C);
  }
  if (backend == GemmBackend::Blas) return gemm_blas(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  gemm_dnnl(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace speedlm::ops
