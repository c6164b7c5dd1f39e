#include "core/huge_pages.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <new>

namespace speedlm {

namespace {
constexpr size_t kHuge = size_t{2} << 20;
constexpr size_t kColourStep = 4096 + 64, kColours = 16;
std::atomic<size_t> g_next_colour{0};
}  // namespace

void* map_pages(size_t bytes) {
  if (bytes < kHuge) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  const size_t colour = g_next_colour.fetch_add(1, std::memory_order_relaxed) % kColours * kColourStep;
  const size_t span = colour + bytes;
  // Map kHuge more, then return the unaligned head and the tail beyond the span to the system.
  void* raw = mmap(nullptr, span + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (base + kHuge - 1) / kHuge * kHuge;
  if (aligned > base) munmap(raw, aligned - base);
  const uintptr_t end = base + span + kHuge, used_end = (aligned + span + 4095) / 4096 * 4096;
  if (end > used_end) munmap(reinterpret_cast<void*>(used_end), end - used_end);
#ifdef MADV_HUGEPAGE
  madvise(reinterpret_cast<void*>(aligned), span, MADV_HUGEPAGE);
#endif
  return reinterpret_cast<void*>(aligned + colour);
}

void unmap_pages(void* p, size_t bytes) {
  if (bytes < kHuge) {
    munmap(p, bytes);
    return;
  }
  const auto at = reinterpret_cast<uintptr_t>(p), base = at / kHuge * kHuge;  // colour < kHuge
  munmap(reinterpret_cast<void*>(base), at - base + bytes);
}

ScratchBuffer::~ScratchBuffer() {
  if (p_) unmap_pages(p_, bytes_);
}

float* ScratchBuffer::floats(int64_t n) {
  const size_t want = static_cast<size_t>(n > 0 ? n : 1) * sizeof(float);
  if (want > bytes_) {
    void* p = map_pages(want);
    if (!p) throw std::bad_alloc();
    if (p_) unmap_pages(p_, bytes_);
    p_ = p;
    bytes_ = want;
  }
  return static_cast<float*>(p_);
}

}  // namespace speedlm
