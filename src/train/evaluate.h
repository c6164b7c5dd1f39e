// Validation in bits per byte: the cross-entropy summed over every target token of
// non-overlapping windows from the start of the validation split, in bits, divided by
// the UTF-8 bytes those tokens cover (val_bytes * tokens / val_tokens):
//   bpb = sum(nats) / ln 2 / bytes
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "models/lm.h"

namespace speedlm {

struct EvalResult {
  double bpb = 0.0;
  double loss = 0.0;  // nats per token
  int64_t tokens = 0;
  std::vector<std::pair<int64_t, nn::MoeLoad>> moe_load;  // per MoE layer, over the evaluated tokens
};

// "layer 1: max/mean 1.31, dropped 0.0%, experts 12.5 13.0 ... %"
std::string format_moe_load(int64_t layer, const nn::MoeLoad& load);

// max_tokens = 0 evaluates the whole split.
EvalResult evaluate_bpb(LanguageModel& model, std::span<const int32_t> val, int64_t val_bytes, int64_t seq_len,
                        int64_t batch, int64_t max_tokens);

}  // namespace speedlm
