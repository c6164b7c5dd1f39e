// Fixed-size decoding memory of a recurrent mixer: a set of named f32 tensors (the SSM /
// linear-attention state [B, H, K, V], a conv window [B, W-1, C], ...) and the token count.
// Its bytes do not depend on the context length; rollback is by snapshot/restore.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "memory/mixer_state.h"
#include "speedlm/tensor.h"

namespace speedlm {

class RecurrentState final : public MixerState {
 public:
  // Adds a zero-filled tensor; names are unique per state.
  Tensor& add(const std::string& name, Shape shape);
  Tensor& get(const std::string& name);
  MemoryKind kind() const override { return MemoryKind::Recurrent; }
  int64_t length() const override { return length_; }
  void advance(int64_t tokens) { length_ += tokens; }
  size_t bytes() const override;
  std::unique_ptr<MixerState> snapshot() const override;
  void restore(const MixerState& snap) override;

 private:
  std::vector<std::pair<std::string, Tensor>> tensors_;
  int64_t length_ = 0;
};

}  // namespace speedlm
