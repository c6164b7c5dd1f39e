// Inference measurements of a model: prefill tokens/s, decode tokens/s and decoding memory
// at given context lengths, batch 1.
#pragma once

#include <vector>

#include "models/lm.h"
#include "speedlm/speedlm.h"

namespace speedlm::arena {

// For each context L: one forward_last over L random tokens on a fresh state (prefill),
// the state's bytes, then decode_tokens single-token steps timed after one untimed step.
std::vector<ArenaSpeed> measure_speed(LanguageModel& model, const std::vector<int64_t>& contexts,
                                      int64_t decode_tokens, uint64_t seed);

}  // namespace speedlm::arena
