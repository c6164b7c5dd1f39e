// Byte accounting of tensor storage, for measuring a kernel's workspace (benchmarks, tests).
#pragma once

#include <cstddef>

namespace speedlm {

// Bytes of tensor storage alive now (as allocated: rounded up to 64) and the most alive at once
// since the last reset_tensor_peak_bytes(), which sets it to the live count. A kernel's extra
// memory: reset, call, then peak minus the bytes alive before the call.
size_t tensor_live_bytes();
size_t tensor_peak_bytes();
void reset_tensor_peak_bytes();
// Bytes of freed large buffers the allocator keeps for reuse (resident memory beyond the live
// bytes). Live plus cached pooled bytes stay within twice their peak.
size_t tensor_pool_cached_bytes();

}  // namespace speedlm
