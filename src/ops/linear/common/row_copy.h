// Strided row copies for the chunk kernels' gathers: a chunk copies 64-float rows of [B, T, H, K]
// tensors (H K floats apart) into its contiguous tiles, and at that size a memcpy call (GCC turns
// a plain copy loop into one) costs as much as the copy itself: 6% of a gated delta rule fwd + bwd
// went to memmove. The loop is kept as a loop, vectorised, inline.
#pragma once

#include <cstdint>

namespace speedlm::ops {

// dst[r * ld_dst + i] = src[r * ld_src + i] for r < rows, i < len.
__attribute__((optimize("no-tree-loop-distribute-patterns"))) inline void copy_rows(
    float* __restrict dst, int64_t ld_dst, const float* __restrict src, int64_t ld_src, int64_t rows, int64_t len) {
  for (int64_t r = 0; r < rows; ++r) {
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) dst[r * ld_dst + i] = src[r * ld_src + i];
  }
}

}  // namespace speedlm::ops
