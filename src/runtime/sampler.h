// Token sampling from logits: repetition penalty, then temperature, top-k, top-p.
// temperature == 0 is greedy (argmax, lowest id on ties).
// Repetition penalty (CTRL, Keskar et al. 2019): for every token already in the
// history, logit /= penalty if positive, logit *= penalty if negative.
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "speedlm/status.h"

namespace speedlm {

struct SamplerParams {
  double temperature = 0.8;
  int64_t top_k = 40;     // 0: off
  double top_p = 0.95;    // 1: off
  double repetition_penalty = 1.0;  // 1: off
  int64_t repetition_window = 64;   // how many recent tokens the penalty looks at
  uint64_t seed = 0;
};

Status validate_sampler(const SamplerParams& p);

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p) : p_(p), rng_(p.seed, 0x5a) {}
  // logits: [V] (modified in place by the penalty and temperature).
  int32_t sample(float* logits, int64_t V, const std::vector<int32_t>& history);

 private:
  SamplerParams p_;
  Rng rng_;
  std::vector<std::pair<float, int32_t>> scratch_;
};

}  // namespace speedlm
