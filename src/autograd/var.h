// A small reverse-mode tape. A Var is a handle to a value and, when it requires
// grad, a gradient buffer. Each differentiable function appends one backward
// closure to the thread's tape; backward(loss) runs them in reverse order.
// Recording is off under NoGradGuard (inference), so no closures are kept.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "speedlm/tensor.h"

namespace speedlm::ag {

struct VarImpl {
  Tensor value;
  Tensor grad;  // allocated (zeroed) on first accumulation
  bool requires_grad = false;
  Tensor value_bf16;  // bf16 copy of value for bf16 matmuls; dropped whenever value changes
};

class Var {
 public:
  Var() = default;
  explicit Var(Tensor value, bool requires_grad = false);
  const Tensor& value() const { return impl_->value; }
  Tensor& value() { return impl_->value; }
  Tensor& grad() const { return impl_->grad; }
  // The gradient buffer, zero-allocated if absent.
  Tensor& grad_buffer() const;
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->value.shape(); }
  int64_t dim(int i) const { return impl_->value.dim(i); }
  VarImpl* impl() const { return impl_.get(); }
  // Backward closures hold their output this way: a consumer's closure, which kept it
  // alive until now, is destroyed as soon as it has run.
  const std::shared_ptr<VarImpl>& shared() const { return impl_; }
  // The bf16 copy of the value, made on first use after each change.
  const Tensor& value_bf16() const;
  // Call after writing to value() in place (optimizer steps, loading weights).
  void value_changed() const { impl_->value_bf16 = Tensor(); }

 private:
  std::shared_ptr<VarImpl> impl_;
};

bool grad_enabled();

// Precision of the GEMMs inside linear(): F32, or Bf16 operands with f32 accumulation
// (weights keep f32 master copies; the optimizer works in f32).
enum class MatmulPrecision { F32, Bf16 };
void set_matmul_precision(MatmulPrecision p);
MatmulPrecision matmul_precision();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool saved_;
};

// True when a function with these inputs must record a backward closure.
bool needs_grad(std::initializer_list<const Var*> inputs);
void record(std::function<void()> backward);
// Seeds d(loss) = 1 (loss must be a scalar), runs the tape in reverse and clears it.
void backward(const Var& loss);
// Drops recorded closures without running them (e.g. after an evaluation with grad on).
void clear_tape();
size_t tape_size();

}  // namespace speedlm::ag
