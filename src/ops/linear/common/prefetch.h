// Software prefetch of the rows a chunk kernel touches next. A head's chunk reads rows of
// [B, T, H, K] tensors at a stride of H K floats; at long T they come from memory, and the copies
// into the chunk's workspace stall on them unless they are requested a chunk ahead.
#pragma once

#include <cstdint>

namespace speedlm::ops {

// Every cache line of `rows` rows of `len` floats, `stride` floats apart; for_write for outputs.
// Issued at once: a whole chunk's worth (thousands of lines) stalls the core until most of them
// have arrived, as each line takes one of its few outstanding-miss slots.
inline void prefetch_rows(const float* p, int64_t rows, int64_t stride, int64_t len, bool for_write = false) {
  constexpr int64_t kLine = 16;  // floats per 64-byte line
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t x = 0; x < len; x += kLine) {
      if (for_write) __builtin_prefetch(p + r * stride + x, 1, 2);
      else __builtin_prefetch(p + r * stride + x, 0, 2);
    }
}

// The same rows, queued on the calling thread and issued a few lines at a time by
// pace_prefetches, which small_gemm calls once per block of output rows: the requests then
// overlap the chunk's products instead of stalling before them (fwd+bwd at T = 16k 5-15% faster
// than one burst per chunk, docs/BENCHMARKS.md). Issued in the order queued; a full queue issues
// its oldest entry at once. A prefetch never faults, so entries a kernel leaves behind are
// harmless to whatever runs next.
void queue_prefetch(const float* p, int64_t rows, int64_t stride, int64_t len, bool for_write = false);

// Issues up to `lines` queued cache lines.
void pace_prefetches(int64_t lines);

}  // namespace speedlm::ops
