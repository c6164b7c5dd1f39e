// Validation in bits per byte: the cross-entropy summed over every target token of
// non-overlapping windows from the start of the validation split, in bits, divided by
// the UTF-8 bytes those tokens cover (val_bytes * tokens / val_tokens):
//   bpb = sum(nats) / ln 2 / bytes
#pragma once

#include <span>

#include "models/lm.h"

namespace speedlm {

struct EvalResult {
  double bpb = 0.0;
  double loss = 0.0;  // nats per token
  int64_t tokens = 0;
};

// max_tokens = 0 evaluates the whole split.
EvalResult evaluate_bpb(LanguageModel& model, std::span<const int32_t> val, int64_t val_bytes, int64_t seq_len,
                        int64_t batch, int64_t max_tokens);

}  // namespace speedlm
