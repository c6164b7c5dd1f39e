#include "train/train_step.h"

namespace speedlm {

StepResult train_step(LanguageModel& model, AdamW& adam, const data::Batch& batch, double lr, double grad_clip) {
  ag::Var loss = model.loss(batch.inputs, batch.targets);
  ag::backward(loss);
  StepResult r;
  r.grad_norm = grad_norm(model.params());
  adam.step(lr, clip_scale(r.grad_norm, grad_clip));
  adam.zero_grad();
  r.loss = loss.value().f32()[0];
  return r;
}

}  // namespace speedlm
