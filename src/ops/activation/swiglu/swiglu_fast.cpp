#include <algorithm>

#include "core/parallel.h"
#include "ops/activation/swiglu/swiglu.h"
#include "core/simd_math.h"

namespace speedlm::ops {

namespace {

// One exp per element (~1 ns scalar-equivalent, far less in SIMD): 32K elements is ~30 us.
constexpr int64_t kGrain = 32768;

// Calls fn(n, i0, i1) on row pieces covering the N x F elements, split evenly over threads
// (so N = 1 decode rows with a large F still use every thread).
template <typename Fn>
void for_row_pieces(int64_t N, int64_t F, Fn&& fn) {
  parallel_for(N * F, kGrain, [&](int64_t e0, int64_t e1) {
    while (e0 < e1) {
      int64_t n = e0 / F, i0 = e0 - n * F, i1 = std::min(F, i0 + (e1 - e0));
      fn(n, i0, i1);
      e0 += i1 - i0;
    }
  });
}

}  // namespace

void swiglu_fast_fwd(const float* gu, int64_t N, int64_t F, float* h) {
  for_row_pieces(N, F, [&](int64_t n, int64_t i0, int64_t i1) {
    const float* g = gu + n * 2 * F;
    const float* u = g + F;
    float* hr = h + n * F;
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) hr[i] = g[i] * u[i] * sigmoid_f32(g[i]);
  });
}

void swiglu_fast_bwd(const float* gu, const float* dh, int64_t N, int64_t F, float* dgu) {
  for_row_pieces(N, F, [&](int64_t n, int64_t i0, int64_t i1) {
    const float* g = gu + n * 2 * F;
    const float* u = g + F;
    const float* d = dh + n * F;
    float* dg = dgu + n * 2 * F;
    float* du = dg + F;
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) {
      float s = sigmoid_f32(g[i]);
      du[i] = d[i] * g[i] * s;
      dg[i] = d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
    }
  });
}

}  // namespace speedlm::ops
