#include "speedlm/tensor.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <list>
#include <mutex>
#include <unordered_map>

#include "core/parallel.h"
#include "core/tensor_bytes.h"

namespace speedlm {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::BF16: return "bf16";
    case DType::I32: return "i32";
  }
  return "?";
}

size_t dtype_size(DType t) { return t == DType::BF16 ? 2 : 4; }

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

namespace {

bool g_poison = false;

// Bytes per thread for copies and fills: ~30 us of memory traffic (research/deps.md §4).
constexpr int64_t kCopyGrainBytes = int64_t{1} << 20;

// Recycles large buffers. Training allocates the same activation and gradient shapes every
// step; fresh pages from the OS would cost a page fault and a zero-fill each time (measured:
// ~13% of a training step). Sizes are rounded up to classes (a sixteenth of their power of two,
// at most 6.25% more) so that shapes which vary a little from call to call (an MoE layer's
// routed rows) reuse each other's buffers instead of each leaving one behind. And the cache is
// bounded: bytes handed out plus bytes cached stay within twice the most ever handed out at once,
// the longest-unused buffers going back to the OS first, so resident memory follows the peak of
// live tensors rather than the history of sizes. Twice, because a step needs more than its peak:
// buffers freed in one phase (the forward's) wait for the next step while another phase
// allocates other sizes (measured 1.1x the peak for a training step); a cap at the peak itself
// evicted and re-faulted 200 MB per step. Never destroyed, so buffers released during static
// destruction still have a home.
class StoragePool {
 public:
  static constexpr size_t kMinBytes = size_t{1} << 16;
  static size_t class_bytes(size_t bytes) {
    const size_t step = std::bit_floor(bytes) / 16;
    return (bytes + step - 1) / step * step;
  }
  // bytes: a class size (class_bytes).
  void* get(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    out_ += bytes;
    max_out_ = std::max(max_out_, out_);
    auto it = free_.find(bytes);
    if (it != free_.end() && !it->second.empty()) {
      auto entry = it->second.back();
      it->second.pop_back();
      cached_ -= bytes;
      void* p = entry->p;
      lru_.erase(entry);
      return p;
    }
    while (out_ + cached_ > 2 * max_out_ && !lru_.empty()) evict_oldest();
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  void put(void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    out_ -= bytes;
    cached_ += bytes;
    lru_.push_back({p, bytes});
    free_[bytes].push_back(std::prev(lru_.end()));
  }
  size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }

 private:
  struct Entry {
    void* p;
    size_t bytes;
  };
  // Entries of a class are pushed in put order, so the oldest one is its list's front.
  void evict_oldest() {
    const Entry e = lru_.front();
    auto& same = free_[e.bytes];
    same.erase(same.begin());
    lru_.pop_front();
    cached_ -= e.bytes;
    munmap(e.p, e.bytes);
  }

  std::mutex mu_;
  std::list<Entry> lru_;  // cached buffers, least recently released first
  std::unordered_map<size_t, std::deque<std::list<Entry>::iterator>> free_;
  size_t out_ = 0, cached_ = 0, max_out_ = 0;
};

StoragePool& pool() {
  static StoragePool* p = new StoragePool();
  return *p;
}

// Bytes of live tensor storage and their high-water mark (tensor_peak_bytes).
std::atomic<size_t> g_live_bytes{0}, g_peak_bytes{0};

void count_alloc(size_t bytes) {
  const size_t live = g_live_bytes.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  size_t peak = g_peak_bytes.load(std::memory_order_relaxed);
  while (live > peak && !g_peak_bytes.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
}

void count_free(size_t bytes) { g_live_bytes.fetch_sub(bytes, std::memory_order_relaxed); }

std::shared_ptr<void> allocate(size_t bytes) {
  count_alloc(bytes);
  if (bytes < StoragePool::kMinBytes) {
    void* p = std::aligned_alloc(64, bytes);
    SPEEDLM_ASSERT(p != nullptr, "out of memory allocating {} bytes", bytes);
    return std::shared_ptr<void>(p, [bytes](void* q) {
      count_free(bytes);
      std::free(q);
    });
  }
  const size_t cls = StoragePool::class_bytes(bytes);
  void* p = pool().get(cls);
  SPEEDLM_ASSERT(p != nullptr, "out of memory allocating {} bytes", cls);
  return std::shared_ptr<void>(p, [bytes, cls](void* q) {
    count_free(bytes);
    pool().put(q, cls);
  });
}

}  // namespace

void set_poison_allocations(bool on) { g_poison = on; }

size_t tensor_live_bytes() { return g_live_bytes.load(std::memory_order_relaxed); }
size_t tensor_pool_cached_bytes() { return pool().cached_bytes(); }
size_t tensor_peak_bytes() { return g_peak_bytes.load(std::memory_order_relaxed); }
void reset_tensor_peak_bytes() { g_peak_bytes.store(tensor_live_bytes(), std::memory_order_relaxed); }

Tensor Tensor::empty(Shape shape, DType dtype) {
  for (int64_t d : shape) SPEEDLM_ASSERT(d >= 0, "negative dimension in {}", shape_str(shape));
  Tensor t;
  t.numel_ = shape_numel(shape);
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  size_t bytes = (t.nbytes() + 63) / 64 * 64;
  t.storage_ = allocate(bytes == 0 ? 64 : bytes);
  if (g_poison && dtype == DType::F32) t.fill(std::numeric_limits<float>::quiet_NaN());
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype) {
  Tensor t = empty(std::move(shape), dtype);
  t.zero();
  return t;
}

Tensor Tensor::full(Shape shape, float value) {
  Tensor t = empty(std::move(shape));
  t.fill(value);
  return t;
}

Tensor Tensor::from(Shape shape, const std::vector<float>& values) {
  Tensor t = empty(std::move(shape));
  SPEEDLM_ASSERT(static_cast<int64_t>(values.size()) == t.numel(), "{} values for {} elements", values.size(), t.numel());
  std::memcpy(t.f32(), values.data(), t.nbytes());
  return t;
}

Tensor Tensor::from_i32(Shape shape, const std::vector<int32_t>& values) {
  Tensor t = empty(std::move(shape), DType::I32);
  SPEEDLM_ASSERT(static_cast<int64_t>(values.size()) == t.numel(), "{} values for {} elements", values.size(), t.numel());
  std::memcpy(t.i32(), values.data(), t.nbytes());
  return t;
}

float* Tensor::f32() const {
  SPEEDLM_ASSERT(dtype_ == DType::F32, "tensor is {}, not f32", dtype_name(dtype_));
  return data<float>();
}
int32_t* Tensor::i32() const {
  SPEEDLM_ASSERT(dtype_ == DType::I32, "tensor is {}, not i32", dtype_name(dtype_));
  return data<int32_t>();
}
uint16_t* Tensor::bf16() const {
  SPEEDLM_ASSERT(dtype_ == DType::BF16, "tensor is {}, not bf16", dtype_name(dtype_));
  return data<uint16_t>();
}

Tensor Tensor::reshape(Shape shape) const {
  SPEEDLM_ASSERT(shape_numel(shape) == numel_, "reshape {} -> {}", shape_str(shape_), shape_str(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::slice0(int64_t begin, int64_t end) const {
  SPEEDLM_ASSERT(ndim() >= 1 && 0 <= begin && begin <= end && end <= shape_[0], "slice0 [{}, {}) of {}", begin,
                 end, shape_str(shape_));
  Tensor t = *this;
  int64_t row = numel_ / (shape_[0] == 0 ? 1 : shape_[0]);
  t.offset_bytes_ += static_cast<size_t>(begin * row) * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  t.numel_ = row * (end - begin);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return clone();
  Tensor t = empty(shape_, dtype);
  if (dtype_ == DType::F32 && dtype == DType::BF16) {
    convert_to_bf16(data<float>(), numel_, t.data<uint16_t>());
    return t;
  }
  for (int64_t i = 0; i < numel_; ++i) {
    float v = dtype_ == DType::F32 ? data<float>()[i]
              : dtype_ == DType::BF16 ? bf16_to_f32(data<uint16_t>()[i])
                                      : static_cast<float>(data<int32_t>()[i]);
    if (dtype == DType::F32) t.data<float>()[i] = v;
    else if (dtype == DType::BF16) t.data<uint16_t>()[i] = f32_to_bf16(v);
    else t.data<int32_t>()[i] = static_cast<int32_t>(v);
  }
  return t;
}

void Tensor::fill(float value) {
  if (dtype_ == DType::F32) {
    float* p = f32();
    for (int64_t i = 0; i < numel_; ++i) p[i] = value;
  } else if (dtype_ == DType::BF16) {
    uint16_t b = f32_to_bf16(value);
    for (int64_t i = 0; i < numel_; ++i) data<uint16_t>()[i] = b;
  } else {
    for (int64_t i = 0; i < numel_; ++i) data<int32_t>()[i] = static_cast<int32_t>(value);
  }
}

void Tensor::zero() {
  char* p = data<char>();
  parallel_for(static_cast<int64_t>(nbytes()), kCopyGrainBytes,
               [&](int64_t b0, int64_t b1) { std::memset(p + b0, 0, static_cast<size_t>(b1 - b0)); });
}

void Tensor::copy_from(const Tensor& src) {
  SPEEDLM_ASSERT(src.numel_ == numel_ && src.dtype_ == dtype_, "copy {} {} into {} {}", shape_str(src.shape_),
                 dtype_name(src.dtype_), shape_str(shape_), dtype_name(dtype_));
  char* dst = data<char>();
  const char* from = src.data<char>();
  parallel_for(static_cast<int64_t>(nbytes()), kCopyGrainBytes,
               [&](int64_t b0, int64_t b1) { std::memcpy(dst + b0, from + b0, static_cast<size_t>(b1 - b0)); });
}

uint16_t f32_to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  // Subnormals flush to signed zero, as VCVTNE2PS2BF16 does, so scalar and SIMD agree.
  if ((u & 0x7f800000u) == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float bf16_to_f32(uint16_t x) {
  uint32_t u = static_cast<uint32_t>(x) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace speedlm
