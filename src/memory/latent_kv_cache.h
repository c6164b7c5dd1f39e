// The decoding memory of an MLA layer (memory kind LatentKv): per token only the normalised KV
// latent c_kv (kv_lora_rank) and the RoPE'd shared key k_pe (qk_rope_head_dim), f32, shared by all
// heads; keys and values are never expanded per head (research/algorithms.md §10.3, §17).
//   rows: [B, capacity, C + Dr]; the first `length` positions are valid.
#pragma once

#include "memory/mixer_state.h"
#include "speedlm/tensor.h"

namespace speedlm {

class LatentKvCache final : public MixerState {
 public:
  LatentKvCache(int64_t batch, int64_t latent_dim, int64_t rope_dim);
  MemoryKind kind() const override { return MemoryKind::LatentKv; }
  int64_t length() const override { return length_; }
  size_t bytes() const override { return rows_.nbytes(); }
  size_t bytes_per_token() const override { return static_cast<size_t>(width()) * sizeof(float); }
  std::unique_ptr<MixerState> snapshot() const override;
  void restore(const MixerState& snap) override;

  int64_t width() const { return C_ + Dr_; }
  // Appends T tokens per sequence: rows: [B, T, C + Dr] ([c_kv | k_pe] per token).
  void append(const float* rows, int64_t T);
  // Rows of batch entry b: [capacity, C + Dr], valid up to length().
  const float* rows(int64_t b) const { return rows_.f32() + b * capacity_ * width(); }

 private:
  void reserve(int64_t capacity);
  int64_t B_, C_, Dr_;
  int64_t length_ = 0, capacity_ = 0;
  Tensor rows_;
};

}  // namespace speedlm
