// A Session owns a model's decoding memory: prefill a prompt (parallel form), then
// decode one token at a time (step form), sampling each next token.
#pragma once

#include <vector>

#include "models/lm.h"
#include "runtime/sampler.h"

namespace speedlm {

class Session {
 public:
  explicit Session(LanguageModel& model) : model_(model), state_(model.make_state(1)) {}
  // Appends tokens to the context; returns the logits after the last one: [V].
  Tensor prefill(const std::vector<int32_t>& tokens);
  // Appends one token; returns the next logits: [V].
  Tensor decode(int32_t token);
  const std::vector<int32_t>& history() const { return history_; }
  const ModelState& state() const { return state_; }
  ModelState& state() { return state_; }

 private:
  LanguageModel& model_;
  ModelState state_;
  std::vector<int32_t> history_;
};

}  // namespace speedlm
