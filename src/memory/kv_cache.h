// A growing KV cache for one attention layer: keys and values of every past token.
//   k, v: [B, capacity, KVH, Dh]; the first `length` positions are valid.
// Capacity grows geometrically; bytes() reports the allocation.
#pragma once

#include "memory/mixer_state.h"
#include "speedlm/tensor.h"

namespace speedlm {

class KvCache final : public MixerState {
 public:
  KvCache(int64_t batch, int64_t kv_heads, int64_t head_dim);
  MemoryKind kind() const override { return MemoryKind::GrowingKv; }
  int64_t length() const override { return length_; }
  size_t bytes() const override { return k_.nbytes() + v_.nbytes(); }
  size_t bytes_per_token() const override { return static_cast<size_t>(2 * KVH_ * Dh_) * sizeof(float); }
  std::unique_ptr<MixerState> snapshot() const override;
  void restore(const MixerState& snap) override;

  // Appends T new tokens: k_new, v_new: [B, T, KVH, Dh].
  void append(const float* k_new, const float* v_new, int64_t T);
  int64_t kv_heads() const { return KVH_; }
  int64_t head_dim() const { return Dh_; }
  // Keys/values of batch row b: [capacity, KVH, Dh], valid up to length().
  const float* k_row(int64_t b) const { return k_.f32() + b * capacity_ * KVH_ * Dh_; }
  const float* v_row(int64_t b) const { return v_.f32() + b * capacity_ * KVH_ * Dh_; }

 private:
  void reserve(int64_t capacity);
  int64_t B_, KVH_, Dh_;
  int64_t length_ = 0, capacity_ = 0;
  Tensor k_, v_;
};

}  // namespace speedlm
