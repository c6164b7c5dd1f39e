#include <algorithm>
#include <cmath>

#include "core/parallel.h"
#include "core/simd_math.h"
#include "ops/loss/cross_entropy/cross_entropy.h"

namespace speedlm::ops {

namespace {
// One exp per element plus a max pass: 32K elements per thread is ~30 us.
constexpr int64_t kGrainElems = 32768;

int64_t row_grain(int64_t V) { return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, V)); }

// d_logits of one row. Not inlined: one compiled copy for both callers below, so the sum's
// order, and hence the result, does not depend on whether a bf16 copy is also written.
[[gnu::noinline]] void bwd_row(const CrossEntropyParams& p, const float* z, int32_t target, float L, float g,
                               int64_t V, float* d) {
  if (target == p.ignore_index) {
    std::fill(d, d + V, 0.0f);
    return;
  }
  // exp(z - lse) with the f32 lse is softmax times exp(rounding of lse), up to ulp(lse) ~
  // 1e-4 relative for logits ~1e3. Dividing by the row's own sum removes that common
  // factor. Each z[j] is read before d[j] is written, so d may alias z.
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < V; ++j) {
    float e = exp_f32(z[j] - L);
    d[j] = e;
    s += e;
  }
  float scale = g / s;
#pragma omp simd
  for (int64_t j = 0; j < V; ++j) d[j] *= scale;
  d[target] -= g;
}

}  // namespace

void cross_entropy_fast_fwd(const CrossEntropyParams& p, const float* logits, const int32_t* targets, int64_t N,
                            int64_t V, float* loss, float* lse) {
  parallel_for(N, row_grain(V), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* z = logits + n * V;
      float m = -INFINITY;
#pragma omp simd reduction(max : m)
      for (int64_t j = 0; j < V; ++j) m = z[j] > m ? z[j] : m;
      float s = 0.0f;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < V; ++j) s += exp_f32(z[j] - m);
      float l = std::log(s);
      lse[n] = m + l;
      // (m - z_t) + l rather than lse - z_t: no cancellation when the target is the max.
      loss[n] = targets[n] == p.ignore_index ? 0.0f : (m - z[targets[n]]) + l;
    }
  });
}

float cross_entropy_mean(const CrossEntropyParams& p, const float* loss, const int32_t* targets, int64_t N,
                         int64_t& count) {
  double sum = 0.0;
  count = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == p.ignore_index) continue;
    sum += loss[n];
    ++count;
  }
  return count ? static_cast<float>(sum / static_cast<double>(count)) : 0.0f;
}

void cross_entropy_fast_bwd(const CrossEntropyParams& p, const float* logits, const int32_t* targets,
                            const float* lse, const float* d_loss, int64_t N, int64_t V, float* d_logits,
                            uint16_t* d_logits16) {
  parallel_for(N, row_grain(V), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      bwd_row(p, logits + n * V, targets[n], lse[n], d_loss[n], V, d_logits + n * V);
      // Rounded while the row is still in cache.
      if (d_logits16) convert_to_bf16_serial(d_logits + n * V, V, d_logits16 + n * V);
    }
  });
}

}  // namespace speedlm::ops
