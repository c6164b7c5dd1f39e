#include <algorithm>

#include "core/parallel.h"
#include "core/simd_math.h"
#include "ops/activation/swiglu/swiglu.h"

namespace speedlm::ops {

namespace {

// One exp per element (~1 ns scalar-equivalent, far less in SIMD): 32K elements is ~30 us.
constexpr int64_t kGrain = 32768;
// The bf16 forms compute this many values into an L1-resident f32 buffer, then round them.
constexpr int64_t kSpan = 512;

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

// h[i] for i in [0, n): gate g, up u.
void fwd_span(const float* g, const float* u, int64_t n, float* h) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) h[i] = g[i] * u[i] * sigmoid_f32(g[i]);
}

void bwd_span(const float* g, const float* u, const float* d, int64_t n, float* dg, float* du) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float s = sigmoid_f32(g[i]);
    du[i] = d[i] * g[i] * s;
    dg[i] = d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
  }
}

}  // namespace

void swiglu_fast_fwd(const float* gu, int64_t N, int64_t F, float* h) {
  for_row_pieces(N, F, [&](int64_t n, int64_t i0, int64_t i1) {
    const float* g = gu + n * 2 * F;
    fwd_span(g + i0, g + F + i0, i1 - i0, h + n * F + i0);
  });
}

void swiglu_fast_bwd(const float* gu, const float* dh, int64_t N, int64_t F, float* dgu) {
  for_row_pieces(N, F, [&](int64_t n, int64_t i0, int64_t i1) {
    const float* g = gu + n * 2 * F;
    float* dg = dgu + n * 2 * F;
    bwd_span(g + i0, g + F + i0, dh + n * F + i0, i1 - i0, dg + i0, dg + F + i0);
  });
}

void swiglu_fast_fwd_bf16(const float* gu, int64_t N, int64_t F, uint16_t* h) {
  for_row_pieces(N, F, [&](int64_t n, int64_t i0, int64_t i1) {
    alignas(64) float buf[kSpan];
    const float* g = gu + n * 2 * F;
    for (int64_t i = i0; i < i1; i += kSpan) {
      int64_t len = std::min(kSpan, i1 - i);
      fwd_span(g + i, g + F + i, len, buf);
      convert_to_bf16_serial(buf, len, h + n * F + i);
    }
  });
}

void swiglu_fast_bwd_bf16(const float* gu, const float* dh, int64_t N, int64_t F, uint16_t* dgu) {
  for_row_pieces(N, F, [&](int64_t n, int64_t i0, int64_t i1) {
    alignas(64) float dg[kSpan], du[kSpan];
    const float* g = gu + n * 2 * F;
    uint16_t* out = dgu + n * 2 * F;
    for (int64_t i = i0; i < i1; i += kSpan) {
      int64_t len = std::min(kSpan, i1 - i);
      bwd_span(g + i, g + F + i, dh + n * F + i, len, dg, du);
      convert_to_bf16_serial(dg, len, out + i);
      convert_to_bf16_serial(du, len, out + F + i);
    }
  });
}

}  // namespace speedlm::ops
