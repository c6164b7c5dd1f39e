#include "memory/latent_kv_cache.h"

#include <algorithm>
#include <cstring>

namespace speedlm {

LatentKvCache::LatentKvCache(int64_t batch, int64_t latent_dim, int64_t rope_dim)
    : B_(batch), C_(latent_dim), Dr_(rope_dim) {
  reserve(0);
}

void LatentKvCache::reserve(int64_t capacity) {
  Tensor rows = Tensor::empty({B_, capacity, width()});
  for (int64_t b = 0; b < B_ && length_ > 0; ++b)
    std::memcpy(rows.f32() + b * capacity * width(), this->rows(b), length_ * width() * sizeof(float));
  rows_ = rows, capacity_ = capacity;
}

void LatentKvCache::append(const float* rows, int64_t T) {
  if (length_ + T > capacity_) reserve(std::max<int64_t>({length_ + T, 2 * capacity_, 16}));
  const size_t w = static_cast<size_t>(width());
  for (int64_t b = 0; b < B_; ++b)
    std::memcpy(rows_.f32() + (b * capacity_ + length_) * w, rows + b * T * w, T * w * sizeof(float));
  length_ += T;
}

std::unique_ptr<MixerState> LatentKvCache::snapshot() const {
  auto s = std::make_unique<LatentKvCache>(B_, C_, Dr_);
  s->rows_ = rows_.clone(), s->length_ = length_, s->capacity_ = capacity_;
  return s;
}

void LatentKvCache::restore(const MixerState& snap) {
  const auto& s = dynamic_cast<const LatentKvCache&>(snap);
  SPEEDLM_ASSERT(s.B_ == B_ && s.C_ == C_ && s.Dr_ == Dr_, "restoring a latent KV cache of another shape");
  rows_ = s.rows_.clone(), length_ = s.length_, capacity_ = s.capacity_;
}

}  // namespace speedlm
