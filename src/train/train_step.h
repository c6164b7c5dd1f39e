// One optimizer step on one batch: the inner step of `speedlm train` and of the arena,
// so both train a model the same way.
#pragma once

#include "models/lm.h"
#include "train/adamw.h"
#include "train/batcher.h"

namespace speedlm {

struct StepResult {
  float loss = 0.0f;       // the batch's mean training loss (nats per target token)
  double grad_norm = 0.0;  // global gradient norm before clipping
  bool has_aux = false;    // the model has MoE balancing losses
  float aux_loss = 0.0f;   // their value, added to the objective (not to `loss`)
};

// Loss (plus MoE balancing losses), backward, gradient clipping at grad_clip (0: off), AdamW update at
// lr, zeroed grads, then the MoE routers' bias update.
StepResult train_step(LanguageModel& model, AdamW& adam, const data::Batch& batch, double lr, double grad_clip);

}  // namespace speedlm
