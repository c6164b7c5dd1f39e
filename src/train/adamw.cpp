#include "train/adamw.h"

#include <cmath>

#include "core/parallel.h"

namespace speedlm {

AdamW::AdamW(const nn::ParamList& params, AdamWParams p) : params_(params), p_(p) {
  for (const auto& np : params_) {
    m_.push_back(Tensor::zeros(np.var->shape()));
    v_.push_back(Tensor::zeros(np.var->shape()));
  }
}

void AdamW::zero_grad() {
  for (const auto& np : params_)
    if (np.var->grad().defined()) np.var->grad().zero();
}

void AdamW::step(double lr) {
  ++t_;
  const float b1 = static_cast<float>(p_.beta1), b2 = static_cast<float>(p_.beta2), eps = static_cast<float>(p_.eps);
  const double bc1 = 1.0 - std::pow(p_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(p_.beta2, static_cast<double>(t_));
  const float step_size = static_cast<float>(lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  for (size_t i = 0; i < params_.size(); ++i) {
    ag::Var& var = *params_[i].var;
    if (!var.grad().defined()) continue;
    const float decay = params_[i].decay ? static_cast<float>(1.0 - lr * p_.weight_decay) : 1.0f;
    float *p = var.value().f32(), *g = var.grad().f32(), *m = m_[i].f32(), *v = v_[i].f32();
    parallel_for(var.value().numel(), 1 << 14, [&](int64_t i0, int64_t i1) {
#pragma omp simd
      for (int64_t j = i0; j < i1; ++j) {
        m[j] = b1 * m[j] + (1.0f - b1) * g[j];
        v[j] = b2 * v[j] + (1.0f - b2) * g[j] * g[j];
        float denom = std::sqrt(v[j]) * inv_sqrt_bc2 + eps;
        p[j] = p[j] * decay - step_size * m[j] / denom;
      }
    });
    var.value_changed();
  }
}

double grad_norm(const nn::ParamList& params) {
  double total = 0.0;
  for (const auto& np : params) {
    const Tensor& g = np.var->grad();
    if (!g.defined()) continue;
    const float* d = g.f32();
    // Serial (vectorised) so the sum, and hence clipping and resume, is bit-reproducible.
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < g.numel(); ++j) s += static_cast<double>(d[j]) * d[j];
    total += s;
  }
  return std::sqrt(total);
}

double clip_grad_norm(const nn::ParamList& params, double max_norm) {
  double norm = grad_norm(params);
  if (max_norm <= 0.0 || norm <= max_norm) return norm;
  float scale = static_cast<float>(max_norm / (norm + 1e-6));
  for (const auto& np : params) {
    Tensor& g = np.var->grad();
    if (!g.defined()) continue;
    float* d = g.f32();
    for (int64_t j = 0; j < g.numel(); ++j) d[j] *= scale;
  }
  return norm;
}

}  // namespace speedlm
