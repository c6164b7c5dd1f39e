#include "autograd/var.h"

namespace speedlm::ag {

namespace {
thread_local bool g_grad_enabled = true;
thread_local std::vector<std::function<void()>> g_tape;
}  // namespace

Var::Var(Tensor value, bool requires_grad) : impl_(std::make_shared<VarImpl>()) {
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
}

Tensor& Var::grad_buffer() const {
  if (!impl_->grad.defined()) impl_->grad = Tensor::zeros(impl_->value.shape());
  return impl_->grad;
}

bool grad_enabled() { return g_grad_enabled; }

namespace {
MatmulPrecision g_matmul_precision = MatmulPrecision::F32;
}
void set_matmul_precision(MatmulPrecision p) { g_matmul_precision = p; }
MatmulPrecision matmul_precision() { return g_matmul_precision; }

const Tensor& Var::value_bf16() const {
  if (!impl_->value_bf16.defined()) impl_->value_bf16 = impl_->value.to(DType::BF16);
  return impl_->value_bf16;
}

NoGradGuard::NoGradGuard() : saved_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = saved_; }

bool needs_grad(std::initializer_list<const Var*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Var* v : inputs)
    if (v->requires_grad()) return true;
  return false;
}

void record(std::function<void()> backward) { g_tape.push_back(std::move(backward)); }

void backward(const Var& loss) {
  SPEEDLM_ASSERT(loss.value().numel() == 1, "backward needs a scalar loss, got {}", shape_str(loss.shape()));
  loss.grad_buffer().fill(1.0f);
  for (auto it = g_tape.rbegin(); it != g_tape.rend(); ++it) {
    (*it)();
    *it = nullptr;  // release captured activations as soon as they are used
  }
  g_tape.clear();
}

void clear_tape() { g_tape.clear(); }
size_t tape_size() { return g_tape.size(); }

}  // namespace speedlm::ag
