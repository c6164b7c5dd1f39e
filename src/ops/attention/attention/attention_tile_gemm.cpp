// See attention_tile_gemm.h. Without AVX-512 the same contract runs as plain loops.
#include "ops/attention/attention/attention_tile_gemm.h"

#include <algorithm>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace speedlm::ops {

namespace {

constexpr int kMr = 6;  // rows of C per micro-kernel call
constexpr int kNv = 4;  // 16-float vectors of C per row (64 columns)

#if defined(__AVX512F__)

// C[MR, 16 NV] (+)= A[MR, K] B[K, 16 NV]; the last vector of a row is masked by `tail`.
// The accumulators start at zero and C joins at the store: a conditional start makes GCC keep
// them in memory instead of registers.
template <int MR, int NV>
void micro(int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B, int64_t ldb, float* C, int64_t ldc,
           __mmask16 tail, bool accumulate, const float* row_scale) {
  __m512 c[MR][NV];
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) c[m][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m512 b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      b[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(tail, B + 16 * v) : _mm512_loadu_ps(B + 16 * v);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m512 x = _mm512_set1_ps(A[m * a_rs]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[m][v] = _mm512_fmadd_ps(x, b[v], c[m][v]);
    }
    A += a_cs;
    B += ldb;
  }
#pragma GCC unroll 8
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mask = v == NV - 1 ? tail : __mmask16(0xFFFF);
      float* at = C + m * ldc + 16 * v;
      if (accumulate) {
        __m512 x = _mm512_maskz_loadu_ps(mask, at);
        if (row_scale) x = _mm512_mul_ps(x, _mm512_set1_ps(row_scale[m]));
        c[m][v] = _mm512_add_ps(c[m][v], x);
      }
      _mm512_mask_storeu_ps(at, mask, c[m][v]);
    }
}

using Micro = void (*)(int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t, __mmask16, bool,
                       const float*);

template <int MR>
constexpr Micro row_kernel(int nv) {
  return nv == 1 ? micro<MR, 1> : nv == 2 ? micro<MR, 2> : nv == 3 ? micro<MR, 3> : micro<MR, 4>;
}

constexpr Micro kernel(int mr, int nv) {
  switch (mr) {
    case 1: return row_kernel<1>(nv);
    case 2: return row_kernel<2>(nv);
    case 3: return row_kernel<3>(nv);
    case 4: return row_kernel<4>(nv);
    case 5: return row_kernel<5>(nv);
    default: return row_kernel<6>(nv);
  }
}

#endif

}  // namespace

void tile_gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B, int64_t ldb,
               float* C, int64_t ldc, bool accumulate, const float* row_scale) {
#if defined(__AVX512F__)
  for (int64_t n0 = 0; n0 < N; n0 += 16 * kNv) {
    const int64_t cols = std::min<int64_t>(16 * kNv, N - n0);
    const int nv = static_cast<int>((cols + 15) / 16);
    const int64_t last = cols - 16 * (nv - 1);
    const __mmask16 tail = static_cast<__mmask16>(last >= 16 ? 0xFFFF : (1u << last) - 1);
    for (int64_t m0 = 0; m0 < M; m0 += kMr) {
      const int mr = static_cast<int>(std::min<int64_t>(kMr, M - m0));
      kernel(mr, nv)(K, A + m0 * a_rs, a_rs, a_cs, B + n0, ldb, C + m0 * ldc + n0, ldc, tail, accumulate,
                     row_scale ? row_scale + m0 : nullptr);
    }
  }
#else
  for (int64_t m = 0; m < M; ++m) {
    float* c = C + m * ldc;
    const float s = accumulate ? (row_scale ? row_scale[m] : 1.0f) : 0.0f;
    for (int64_t n = 0; n < N; ++n) c[n] = accumulate ? c[n] * s : 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      const float a = A[m * a_rs + k * a_cs];
      const float* b = B + k * ldb;
#pragma omp simd
      for (int64_t n = 0; n < N; ++n) c[n] += a * b[n];
    }
  }
#endif
}

}  // namespace speedlm::ops
