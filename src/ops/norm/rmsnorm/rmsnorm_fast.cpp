#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "ops/norm/rmsnorm/rmsnorm.h"

namespace speedlm::ops {

namespace {

// Two passes over each row, bandwidth-bound: 64K elements per thread is ~30 us.
constexpr int64_t kGrainElems = 65536;

int64_t row_grain(int64_t D) { return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, D)); }

float dot(const float* a, const float* b, int64_t D) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t d = 0; d < D; ++d) s += a[d] * b[d];
  return s;
}

// Rows [n0, n1). Not inlined: one compiled copy whatever the caller's branches, so the sum's
// order, and hence y, does not depend on whether a bf16 copy is also written.
[[gnu::noinline]] void fwd_rows(const RmsNormParams& p, const float* x, const float* w, int64_t n0, int64_t n1,
                                int64_t D, float* y, float* rstd) {
  for (int64_t n = n0; n < n1; ++n) {
    const float* xr = x + n * D;
    float* yr = y + n * D;
    float r = 1.0f / std::sqrt(dot(xr, xr, D) / static_cast<float>(D) + p.eps);
    rstd[n] = r;
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) yr[d] = xr[d] * r * w[d];
  }
}

}  // namespace

void rmsnorm_fast_fwd(const RmsNormParams& p, const float* x, const float* w, int64_t N, int64_t D, float* y,
                      float* rstd, uint16_t* y16) {
  // Rows in blocks of ~32 KB, so the bf16 copy is rounded from L1.
  const int64_t block = std::max<int64_t>(1, 8192 / std::max<int64_t>(1, D));
  parallel_for(N, row_grain(D), [&](int64_t n0, int64_t n1) {
    for (int64_t b0 = n0; b0 < n1; b0 += block) {
      int64_t b1 = std::min(n1, b0 + block);
      fwd_rows(p, x, w, b0, b1, D, y, rstd);
      if (y16) convert_to_bf16_serial(y + b0 * D, (b1 - b0) * D, y16 + b0 * D);
    }
  });
}

void rmsnorm_fast_bwd(const RmsNormParams&, const float* x, const float* w, const float* rstd, const float* dy,
                      int64_t N, int64_t D, float* dx, float* dw, bool accumulate_dx) {
  if (N <= 0) return;
  // dw is a sum over rows: each chunk of rows owns a partial row (padded to a cache line),
  // and the partials are added in chunk order, so the result is race-free and deterministic.
  int64_t chunks = std::min<int64_t>(num_threads(), std::max<int64_t>(1, N / row_grain(D)));
  int64_t stride = (D + 15) / 16 * 16;
  thread_local std::vector<float> partial_buf;
  if (partial_buf.size() < static_cast<size_t>(chunks * stride)) partial_buf.resize(chunks * stride);
  float* partial = partial_buf.data();
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      float* pc = partial + c * stride;
      std::fill(pc, pc + D, 0.0f);
      for (int64_t n = N * c / chunks; n < N * (c + 1) / chunks; ++n) {
        const float* xr = x + n * D;
        const float* g = dy + n * D;
        float* dxr = dx + n * D;
        float r = rstd[n];
        float dot_gwx = 0.0f;
#pragma omp simd reduction(+ : dot_gwx)
        for (int64_t d = 0; d < D; ++d) dot_gwx += g[d] * w[d] * xr[d];
        float k = r * r * dot_gwx / static_cast<float>(D);
        if (accumulate_dx) {
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) dxr[d] += r * (g[d] * w[d] - xr[d] * k);
        } else {
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) dxr[d] = r * (g[d] * w[d] - xr[d] * k);
        }
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) pc[d] += g[d] * xr[d] * r;
      }
    }
  });
  for (int64_t c = 1; c < chunks; ++c) {
    const float* pc = partial + c * stride;
#pragma omp simd
    for (int64_t d = 0; d < D; ++d) partial[d] += pc[d];
  }
#pragma omp simd
  for (int64_t d = 0; d < D; ++d) dw[d] += partial[d];
}

}  // namespace speedlm::ops
