// Helpers the differentiable functions share for writing input gradients.
#pragma once

#include "autograd/var.h"
#include "ops/elementwise/add/add.h"

namespace speedlm::ag {

// Where a backward writes an input's gradient: straight into a fresh buffer when the
// input has none yet (overwrite), else into a scratch to be added.
struct GradSink {
  Tensor target;
  bool fresh;
};

inline GradSink grad_sink(const Var& v) {
  if (v.grad().defined()) return {Tensor::empty(v.shape()), false};
  v.impl()->grad = Tensor::empty(v.shape());
  return {v.grad(), true};
}

inline void commit(const Var& v, const GradSink& s) {
  if (!s.fresh) ops::add_fast_inplace(v.grad().f32(), s.target.f32(), s.target.numel());
}

// For an input whose gradient is the output's unchanged (up to its shape): adopts the output's
// gradient buffer when the input has none yet (no copy), else adds it. Call it after the last
// read of out->grad.
inline void pass_through(const Var& v, const std::shared_ptr<VarImpl>& out) {
  if (!v.requires_grad()) return;
  if (!v.grad().defined()) v.impl()->grad = out->grad.reshape(v.shape());
  else ops::add_fast_inplace(v.grad().f32(), out->grad.f32(), out->grad.numel());
}

// The output's gradient is consumed once; free it as soon as its closure ran.
inline void release(const std::shared_ptr<VarImpl>& out) { out->grad = Tensor(); }

// The beta of a GEMM that writes v's gradient: 0 overwrites a freshly allocated buffer,
// 1 accumulates into the gradient other consumers already wrote.
inline float grad_beta(const Var& v) {
  if (v.grad().defined()) return 1.0f;
  v.impl()->grad = Tensor::empty(v.shape());
  return 0.0f;
}

}  // namespace speedlm::ag
