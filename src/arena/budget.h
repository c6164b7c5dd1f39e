// An arena run's training budget: wall-clock seconds or training tokens, and the
// budget-relative learning-rate schedule every config shares.
#pragma once

#include <string>

#include "speedlm/status.h"
#include "train/schedule.h"

namespace speedlm::arena {

struct Budget {
  double seconds = 0.0;  // > 0: a time budget
  int64_t tokens = 0;    // > 0: a token budget
  // Fraction of the budget used after `seconds` of training and `tokens` tokens, in [0, 1+).
  double progress(double elapsed_s, int64_t tokens_seen) const;
};

// "90s", "1.5m", "2min", "3" (minutes); "500000tok", "300ktok", "2Mtok".
Result<Budget> parse_budget(const std::string& text);

// Linear warmup over the first 5% of the budget, then the config's decay (train/schedule.h) with
// the budget's progress as training progress: every config gets the same schedule shape whatever
// its speed.
double budget_lr(double progress, double lr, const LrSchedule& sched);

}  // namespace speedlm::arena
