// Large buffers on 2 MiB pages. A kernel that streams tens of megabytes (long-T inputs, saved
// chunk states) touches a new 4 KiB page every few rows, and each page costs a TLB miss and a
// page walk: measured ~10% of a T = 4096 gated delta rule fwd + bwd. Mappings of at least 2 MiB
// are aligned to 2 MiB and advised MADV_HUGEPAGE, so where the kernel allows transparent huge
// pages ("madvise" or "always" in /sys/kernel/mm/transparent_hugepage/enabled) one TLB entry
// covers 512 times more memory. Elsewhere they are ordinary pages; nothing else changes.
// Aligned buffers would all start in the same cache sets, and a kernel that walks several of them
// at equal offsets (saved states, saved factors, inputs) would evict its own lines: measured 1.6x
// slower for the rwkv7 backward. So each mapping starts at one of 16 offsets ("colours") past its
// aligned base, 4 KiB + 64 B apart, which spreads equal offsets over L1 and L2 sets.
#pragma once

#include <cstddef>
#include <cstdint>

namespace speedlm {

// Anonymous zero-filled pages for `bytes` (> 0); null when the system refuses.
void* map_pages(size_t bytes);
// Releases a map_pages(bytes) mapping.
void unmap_pages(void* p, size_t bytes);

// A scratch buffer that grows on demand and keeps its pages across calls (contents undefined
// after growing). Meant as a thread_local of the kernel that uses it.
class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer();
  // At least n floats; throws std::bad_alloc when the system refuses.
  float* floats(int64_t n);

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace speedlm
