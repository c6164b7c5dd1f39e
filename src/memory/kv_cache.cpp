#include "memory/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace speedlm {

const char* memory_kind_name(MemoryKind kind) {
  switch (kind) {
    case MemoryKind::GrowingKv: return "kv";
    case MemoryKind::WindowKv: return "window_kv";
    case MemoryKind::LatentKv: return "latent_kv";
    case MemoryKind::Recurrent: return "recurrent";
    case MemoryKind::Composite: return "composite";
  }
  return "?";
}

KvCache::KvCache(int64_t batch, int64_t kv_heads, int64_t head_dim) : B_(batch), KVH_(kv_heads), Dh_(head_dim) {
  reserve(0);
}

void KvCache::reserve(int64_t capacity) {
  Tensor k = Tensor::empty({B_, capacity, KVH_, Dh_}), v = Tensor::empty({B_, capacity, KVH_, Dh_});
  size_t row = static_cast<size_t>(KVH_ * Dh_) * sizeof(float);
  for (int64_t b = 0; b < B_ && length_ > 0; ++b) {
    std::memcpy(k.f32() + b * capacity * KVH_ * Dh_, k_row(b), length_ * row);
    std::memcpy(v.f32() + b * capacity * KVH_ * Dh_, v_row(b), length_ * row);
  }
  k_ = k, v_ = v, capacity_ = capacity;
}

void KvCache::append(const float* k_new, const float* v_new, int64_t T) {
  if (length_ + T > capacity_) reserve(std::max<int64_t>({length_ + T, 2 * capacity_, 16}));
  size_t row = static_cast<size_t>(KVH_ * Dh_);
  for (int64_t b = 0; b < B_; ++b) {
    std::memcpy(k_.f32() + (b * capacity_ + length_) * row, k_new + b * T * row, T * row * sizeof(float));
    std::memcpy(v_.f32() + (b * capacity_ + length_) * row, v_new + b * T * row, T * row * sizeof(float));
  }
  length_ += T;
}

std::unique_ptr<MixerState> KvCache::snapshot() const {
  auto s = std::make_unique<KvCache>(B_, KVH_, Dh_);
  s->k_ = k_.clone(), s->v_ = v_.clone(), s->length_ = length_, s->capacity_ = capacity_;
  return s;
}

void KvCache::restore(const MixerState& snap) {
  const auto& s = dynamic_cast<const KvCache&>(snap);
  SPEEDLM_ASSERT(s.B_ == B_ && s.KVH_ == KVH_ && s.Dh_ == Dh_, "restoring a KV cache of another shape");
  k_ = s.k_.clone(), v_ = s.v_.clone(), length_ = s.length_, capacity_ = s.capacity_;
}

}  // namespace speedlm
