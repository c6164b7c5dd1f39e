#include "ops/linear/common/small_gemm.h"

#include "ops/linear/common/prefetch.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace speedlm::ops {

namespace {

typedef float V16 __attribute__((vector_size(64), aligned(4), may_alias));  // unaligned loads/stores
constexpr int64_t kLanes = 16;
// Queued prefetch lines (prefetch.h) issued per 4 rows of C: 16 lines (1 KiB) per ~1000 vector
// FMAs at 64 x 64 x 64 keeps a chunk's next rows arriving during its products. Measured at
// T = 16k (docs/BENCHMARKS.md): 4 and 8 lines leave the queue behind, 32 is no better than 16.
constexpr int64_t kPace = 16;

// Rows [i, i + MR) x vectors [v0, v0 + NV) of C from packed Bp [K, ldp].
template <int MR, int NV>
void block(bool ta, int64_t i, int64_t v0, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* Bp, int64_t ldp, float beta, float* C, int64_t ldc) {
  V16 acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = V16{};
  const float* bk = Bp + v0 * kLanes;
  for (int64_t k = 0; k < K; ++k, bk += ldp) {
    V16 b[NV];
    for (int v = 0; v < NV; ++v) b[v] = *reinterpret_cast<const V16*>(bk + v * kLanes);
    for (int r = 0; r < MR; ++r) {
      const float a = ta ? A[k * lda + i + r] : A[(i + r) * lda + k];
      for (int v = 0; v < NV; ++v) acc[r][v] += a * b[v];
    }
  }
  for (int r = 0; r < MR; ++r) {
    float* c = C + (i + r) * ldc;
    for (int v = 0; v < NV; ++v) {
      const int64_t j = (v0 + v) * kLanes, n = std::min(kLanes, N - j);
      if (n == kLanes) {
        V16* cv = reinterpret_cast<V16*>(c + j);
        *cv = beta == 0.0f ? alpha * acc[r][v] : alpha * acc[r][v] + beta * *cv;
      } else if (beta == 0.0f) {
        for (int64_t x = 0; x < n; ++x) c[j + x] = alpha * acc[r][v][x];
      } else {
        for (int64_t x = 0; x < n; ++x) c[j + x] = alpha * acc[r][v][x] + beta * c[j + x];
      }
    }
  }
}

template <int MR>
void row_block(bool ta, int64_t i, int64_t nv, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* Bp, int64_t ldp, float beta, float* C, int64_t ldc) {
  int64_t v = 0;
  for (; v + 4 <= nv; v += 4) block<MR, 4>(ta, i, v, N, K, alpha, A, lda, Bp, ldp, beta, C, ldc);
  switch (nv - v) {
    case 3: block<MR, 3>(ta, i, v, N, K, alpha, A, lda, Bp, ldp, beta, C, ldc); break;
    case 2: block<MR, 2>(ta, i, v, N, K, alpha, A, lda, Bp, ldp, beta, C, ldc); break;
    case 1: block<MR, 1>(ta, i, v, N, K, alpha, A, lda, Bp, ldp, beta, C, ldc); break;
    default: break;
  }
}

}  // namespace

void small_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  const int64_t nv = (N + kLanes - 1) / kLanes;
  // The kernel reads op(B) as [K, ldp] rows of whole vectors. An untransposed B whose rows are
  // whole vectors is read in place; otherwise it is packed, zero-padded to ldp = nv * 16.
  const float* Bp = B;
  int64_t ldp = ldb;
  if (trans_b || N % kLanes != 0) {
    thread_local std::vector<float> packed;
    ldp = nv * kLanes;
    packed.resize(static_cast<size_t>(std::max<int64_t>(K, 1) * ldp));
    for (int64_t k = 0; k < K; ++k) {
      float* p = &packed[k * ldp];
      if (trans_b)
        for (int64_t j = 0; j < N; ++j) p[j] = B[j * ldb + k];
      else
        std::memcpy(p, B + k * ldb, sizeof(float) * N);
      std::fill(p + N, p + ldp, 0.0f);
    }
    Bp = packed.data();
  }
  int64_t i = 0;
  // One or two vectors of columns (N <= 32, the head dims of small models): 4 rows give only 4 or
  // 8 independent FMA chains, too few to hide the FMA latency; 8 rows double them. Each element
  // still sums k in order, so the results do not change.
  if (nv == 1)
    for (; i + 8 <= M; i += 8) {
      pace_prefetches(2 * kPace);
      block<8, 1>(trans_a, i, 0, N, K, alpha, A, lda, Bp, ldp, beta, C, ldc);
    }
  else if (nv == 2)
    for (; i + 8 <= M; i += 8) {
      pace_prefetches(2 * kPace);
      block<8, 2>(trans_a, i, 0, N, K, alpha, A, lda, Bp, ldp, beta, C, ldc);
    }
  for (; i + 4 <= M; i += 4) {
    pace_prefetches(kPace);
    row_block<4>(trans_a, i, nv, N, K, alpha, A, lda, Bp, ldp, beta, C, ldc);
  }
  switch (M - i) {
    case 3: row_block<3>(trans_a, i, nv, N, K, alpha, A, lda, Bp, ldp, beta, C, ldc); break;
    case 2: row_block<2>(trans_a, i, nv, N, K, alpha, A, lda, Bp, ldp, beta, C, ldc); break;
    case 1: row_block<1>(trans_a, i, nv, N, K, alpha, A, lda, Bp, ldp, beta, C, ldc); break;
    default: break;
  }
}

}  // namespace speedlm::ops
