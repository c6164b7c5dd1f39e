// AdamW (Loshchilov & Hutter), as torch.optim.AdamW computes it:
//   p *= 1 - lr * wd                  (decoupled decay, only on params with decay = true)
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// plus global-norm gradient clipping (clip_grad_norm_: g *= c / (||g|| + 1e-6) when ||g|| > c).
#pragma once

#include <vector>

#include "nn/param.h"

namespace speedlm {

struct AdamWParams {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
};

class AdamW {
 public:
  AdamW(const nn::ParamList& params, AdamWParams p);
  // One update with gradients g * grad_scale (clip_scale's factor, applied on the fly instead
  // of by a pass over the gradients). Parameters that carry a bf16 copy (bf16 matmul operands)
  // get it refreshed in the same pass.
  void step(double lr, float grad_scale = 1.0f);
  // Drops the gradients (PyTorch's set_to_none): the next backward's first writer overwrites
  // instead of adding to a zeroed buffer, which saves a memset and a read of every gradient.
  // A parameter that then receives no gradient is skipped by step(), as in PyTorch.
  void zero_grad();
  int64_t steps_taken() const { return t_; }
  void set_steps_taken(int64_t t) { t_ = t; }
  // Moment buffers, one pair per parameter in params order.
  std::vector<Tensor>& m() { return m_; }
  std::vector<Tensor>& v() { return v_; }

 private:
  nn::ParamList params_;
  AdamWParams p_;
  std::vector<Tensor> m_, v_;
  int64_t t_ = 0;
};

// Global L2 norm of all gradients (missing gradients count as zero).
double grad_norm(const nn::ParamList& params);
// The factor that brings gradients of global norm `norm` down to max_norm (1 when already within
// it, or when max_norm <= 0 disables clipping).
float clip_scale(double norm, double max_norm);
// Scales gradients so their global norm is at most max_norm; returns the norm before clipping.
double clip_grad_norm(const nn::ParamList& params, double max_norm);

}  // namespace speedlm
