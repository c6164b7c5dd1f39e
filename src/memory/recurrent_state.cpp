#include "memory/recurrent_state.h"

namespace speedlm {

Tensor& RecurrentState::add(const std::string& name, Shape shape) {
  for (const auto& [n, t] : tensors_) SPEEDLM_ASSERT(n != name, "recurrent state: duplicate tensor {}", name);
  tensors_.emplace_back(name, Tensor::zeros(std::move(shape)));
  return tensors_.back().second;
}

Tensor& RecurrentState::get(const std::string& name) {
  for (auto& [n, t] : tensors_)
    if (n == name) return t;
  SPEEDLM_ASSERT(false, "recurrent state: no tensor {}", name);
  return tensors_.front().second;
}

size_t RecurrentState::bytes() const {
  size_t total = 0;
  for (const auto& [n, t] : tensors_) total += t.nbytes();
  return total;
}

std::unique_ptr<MixerState> RecurrentState::snapshot() const {
  auto s = std::make_unique<RecurrentState>();
  for (const auto& [n, t] : tensors_) s->tensors_.emplace_back(n, t.clone());
  s->length_ = length_;
  return s;
}

void RecurrentState::restore(const MixerState& snap) {
  const auto& s = dynamic_cast<const RecurrentState&>(snap);
  SPEEDLM_ASSERT(s.tensors_.size() == tensors_.size(), "restoring a recurrent state of another layout");
  for (size_t i = 0; i < tensors_.size(); ++i) {
    SPEEDLM_ASSERT(s.tensors_[i].first == tensors_[i].first && s.tensors_[i].second.same_shape(tensors_[i].second),
                   "restoring a recurrent state of another layout ({})", tensors_[i].first);
    tensors_[i].second.copy_from(s.tensors_[i].second);
  }
  length_ = s.length_;
}

}  // namespace speedlm
