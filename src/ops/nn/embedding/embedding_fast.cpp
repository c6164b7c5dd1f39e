#include <algorithm>
#include <cstring>

#include "core/parallel.h"
#include "ops/nn/embedding/embedding.h"

namespace speedlm::ops {

namespace {
// Row copies and adds, bandwidth-bound: 64K elements per thread is ~30 us.
constexpr int64_t kGrainElems = 65536;
}  // namespace

void embedding_fast_fwd(const int32_t* ids, int64_t N, const float* weight, int64_t D, float* out) {
  parallel_for(N, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, D)), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      std::memcpy(out + n * D, weight + static_cast<int64_t>(ids[n]) * D, static_cast<size_t>(D) * sizeof(float));
  });
}

void embedding_fast_bwd(const int32_t* ids, int64_t N, const float* d_out, int64_t V, int64_t D, float* d_weight) {
  if (N <= 0 || D <= 0) return;
  // Scatter-add without races: tasks own disjoint tiles of d_weight (a column block, i.e.
  // cache-line multiples of D, times a slice of the vocabulary). Every task scans all ids
  // in token order, so each element sums its tokens in the same order: deterministic.
  // Column blocks keep the split balanced however skewed the ids are; vocabulary slices
  // are added only when D alone gives fewer blocks than threads.
  int64_t threads = num_threads();
  int64_t width = std::max<int64_t>(16, (D / threads + 15) / 16 * 16);
  int64_t col_blocks = (D + width - 1) / width;
  int64_t vocab_parts = std::clamp<int64_t>((threads + col_blocks - 1) / col_blocks, 1, V);
  int64_t tasks = col_blocks * vocab_parts;
  int64_t task_work = std::max<int64_t>(1, N * D / tasks);
  parallel_for(tasks, std::max<int64_t>(1, kGrainElems / task_work), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t d0 = (t % col_blocks) * width, d1 = std::min(D, d0 + width);
      int64_t part = t / col_blocks, v0 = V * part / vocab_parts, v1 = V * (part + 1) / vocab_parts;
      for (int64_t n = 0; n < N; ++n) {
        int64_t v = ids[n];
        if (v < v0 || v >= v1) continue;
        float* dst = d_weight + v * D;
        const float* src = d_out + n * D;
#pragma omp simd
        for (int64_t d = d0; d < d1; ++d) dst[d] += src[d];
      }
    }
  });
}

}  // namespace speedlm::ops
