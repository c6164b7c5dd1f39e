#include "memory/composite_state.h"

#include "speedlm/status.h"

namespace speedlm {

size_t CompositeState::bytes() const {
  size_t n = 0;
  for (const auto& b : branches_) n += b->bytes();
  return n;
}

std::unique_ptr<MixerState> CompositeState::snapshot() const {
  std::vector<std::unique_ptr<MixerState>> snaps;
  for (const auto& b : branches_) snaps.push_back(b->snapshot());
  return std::make_unique<CompositeState>(std::move(snaps));
}

void CompositeState::restore(const MixerState& snap) {
  SPEEDLM_ASSERT(snap.kind() == MemoryKind::Composite, "restore: a {} snapshot into a composite state",
                 memory_kind_name(snap.kind()));
  const auto& s = static_cast<const CompositeState&>(snap);
  SPEEDLM_ASSERT(s.size() == size(), "restore: {} vs {} branches", s.size(), size());
  for (size_t i = 0; i < size(); ++i) branches_[i]->restore(s.branch(i));
}

}  // namespace speedlm
