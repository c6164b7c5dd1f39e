// The decoding memory of an intra-layer hybrid (nn/mixers/hymba.h): one state per branch,
// side by side. Bytes are the sum; snapshot/restore covers every branch.
#pragma once

#include <vector>

#include "memory/mixer_state.h"

namespace speedlm {

class CompositeState final : public MixerState {
 public:
  explicit CompositeState(std::vector<std::unique_ptr<MixerState>> branches) : branches_(std::move(branches)) {}
  MemoryKind kind() const override { return MemoryKind::Composite; }
  int64_t length() const override { return branches_.empty() ? 0 : branches_[0]->length(); }
  size_t bytes() const override;
  std::unique_ptr<MixerState> snapshot() const override;
  void restore(const MixerState& snap) override;

  size_t size() const { return branches_.size(); }
  MixerState& branch(size_t i) { return *branches_[i]; }
  const MixerState& branch(size_t i) const { return *branches_[i]; }

 private:
  std::vector<std::unique_ptr<MixerState>> branches_;
};

}  // namespace speedlm
