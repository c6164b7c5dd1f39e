#include "train/train_step.h"

#include "autograd/functions.h"

namespace speedlm {

StepResult train_step(LanguageModel& model, AdamW& adam, const data::Batch& batch, double lr, double grad_clip) {
  ag::Var loss = model.loss(batch.inputs, batch.targets);
  // MoE balancing losses join the objective; the reported loss stays the cross-entropy.
  ag::Var aux = model.take_aux_loss();
  ag::backward(aux.defined() ? ag::add(loss, aux) : loss);
  StepResult r;
  r.grad_norm = grad_norm(model.params());
  adam.step(lr, clip_scale(r.grad_norm, grad_clip));
  adam.zero_grad();
  model.update_router_bias();
  r.loss = loss.value().f32()[0];
  r.has_aux = aux.defined();
  if (r.has_aux) r.aux_loss = aux.value().f32()[0];
  return r;
}

}  // namespace speedlm
