// Training hyperparameters: the "train" section of a model config JSON.
#pragma once

#include <nlohmann/json.hpp>

#include "speedlm/status.h"
#include "train/schedule.h"

namespace speedlm {

struct TrainConfig {
  int64_t batch_size = 16;
  int64_t seq_len = 256;
  double lr = 1e-3;
  LrSchedule schedule;  // "schedule" (cosine | wsd), "min_lr_ratio", "decay_fraction" (wsd)
  int64_t warmup_steps = 100;
  int64_t steps = 2000;
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;  // global gradient norm; 0 disables
  uint64_t seed = 1234;
  int64_t eval_every = 200;       // steps between validation passes; 0: only at the end
  int64_t eval_tokens = 65536;    // validation tokens per pass; 0: all
  int64_t checkpoint_every = 500;  // steps between checkpoints; 0: only at the end
  int64_t log_every = 10;

  nlohmann::json to_json() const;
  static Result<TrainConfig> from_json(const nlohmann::json& j);  // j: the "train" object (may be null)
};

}  // namespace speedlm
