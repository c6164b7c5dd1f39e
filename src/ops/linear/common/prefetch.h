// Software prefetch of the rows a chunk kernel touches next. A head's chunk reads rows of
// [B, T, H, K] tensors at a stride of H K floats; at long T they come from memory, and the copies
// into the chunk's workspace stall on them unless they are requested a chunk ahead.
//
// Requested all at once, a chunk's worth (thousands of cache lines) stalls the core until most
// of them have arrived, as each line takes one of its few outstanding-miss slots. So the rows
// are queued on the calling thread and issued a few lines at a time by pace_prefetches, which
// small_gemm calls once per block of output rows: the requests then overlap the chunk's
// products (fwd+bwd at T = 16k 5-15% faster than one burst per chunk, docs/BENCHMARKS.md).
#pragma once

#include <cstdint>

namespace speedlm::ops {

// Queues every cache line of `rows` rows of `len` floats, `stride` floats apart; for_write for
// outputs. Issued in the order queued; a full queue issues its oldest entry at once. A prefetch
// never faults, so entries a kernel leaves behind are harmless to whatever runs next.
void queue_prefetch(const float* p, int64_t rows, int64_t stride, int64_t len, bool for_write = false);

// Issues up to `lines` queued cache lines.
void pace_prefetches(int64_t lines);

}  // namespace speedlm::ops
