#include "train/adamw.h"

#include <algorithm>
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
  for (const auto& np : params_) np.var->impl()->grad = Tensor();
}

void AdamW::step(double lr, float grad_scale) {
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
    float *p = var.value().f32(), *m = m_[i].f32(), *v = v_[i].f32();
    const float* g = var.grad().f32();
    Tensor& copy16 = var.impl()->value_bf16;
    uint16_t* p16 = copy16.defined() ? copy16.bf16() : nullptr;
    parallel_for(var.value().numel(), 1 << 14, [&](int64_t i0, int64_t i1) {
#pragma omp simd
      for (int64_t j = i0; j < i1; ++j) {
        float gj = g[j] * grad_scale;
        m[j] = b1 * m[j] + (1.0f - b1) * gj;
        v[j] = b2 * v[j] + (1.0f - b2) * gj * gj;
        float denom = std::sqrt(v[j]) * inv_sqrt_bc2 + eps;
        p[j] = p[j] * decay - step_size * m[j] / denom;
      }
      if (p16) convert_to_bf16_serial(p + i0, i1 - i0, p16 + i0);
    });
  }
}

double grad_norm(const nn::ParamList& params) {
  // Sums of fixed 64K-element chunks, added in chunk order: the result is the same for every
  // thread count, so clipping (and hence resume) is bit-reproducible.
  constexpr int64_t kChunk = 1 << 16;
  double total = 0.0;
  std::vector<double> partial;
  for (const auto& np : params) {
    const Tensor& g = np.var->grad();
    if (!g.defined()) continue;
    const float* d = g.f32();
    const int64_t n = g.numel(), chunks = (n + kChunk - 1) / kChunk;
    partial.assign(static_cast<size_t>(chunks), 0.0);
    parallel_for(chunks, 4, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        double s = 0.0;
        const int64_t end = std::min(n, (c + 1) * kChunk);
#pragma omp simd reduction(+ : s)
        for (int64_t j = c * kChunk; j < end; ++j) s += static_cast<double>(d[j]) * d[j];
        partial[c] = s;
      }
    });
    for (double s : partial) total += s;
  }
  return std::sqrt(total);
}

float clip_scale(double norm, double max_norm) {
  if (max_norm <= 0.0 || norm <= max_norm) return 1.0f;
  return static_cast<float>(max_norm / (norm + 1e-6));
}

double clip_grad_norm(const nn::ParamList& params, double max_norm) {
  double norm = grad_norm(params);
  float scale = clip_scale(norm, max_norm);
  if (scale == 1.0f) return norm;
  for (const auto& np : params) {
    Tensor& g = np.var->grad();
    if (!g.defined()) continue;
    float* d = g.f32();
    parallel_for(g.numel(), 1 << 15, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) d[j] *= scale;
    });
  }
  return norm;
}

}  // namespace speedlm
