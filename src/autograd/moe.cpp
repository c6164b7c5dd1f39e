#include "autograd/moe.h"

#include <memory>

#include "ops/elementwise/add/add.h"

namespace speedlm::ag {

namespace {

// Adds a freshly computed gradient into v's buffer (or hands it over when v has none yet).
void accumulate(const Var& v, const Tensor& g) {
  if (!v.grad().defined()) v.impl()->grad = g;
  else ops::add_fast_inplace(v.grad().f32(), g.f32(), g.numel());
}

}  // namespace

MoeResult moe(const Var& x, const Var& logits, const Tensor& bias, const Var& w_gate_up, const Var& w_down,
              ops::MoeParams p) {
  const int64_t N = x.dim(0), D = x.dim(1);
  SPEEDLM_ASSERT(logits.dim(0) == N && logits.dim(1) == p.E, "moe: logits {} for N={} E={}", shape_str(logits.shape()),
                 N, p.E);
  p.bf16 = matmul_precision() == MatmulPrecision::Bf16 && N > 1;
  // Weights as tensors (bf16 copies kept alive for the backward when used).
  Tensor w1 = w_gate_up.value(), w2 = w_down.value();
  Tensor w1h = p.bf16 ? w_gate_up.value_bf16() : Tensor(), w2h = p.bf16 ? w_down.value_bf16() : Tensor();
  auto weights = [=] {
    return ops::MoeExpertWeights{w1.f32(), w2.f32(), w1h.defined() ? w1h.bf16() : nullptr,
                                 w2h.defined() ? w2h.bf16() : nullptr};
  };
  auto r = std::make_shared<ops::MoeRouting>(ops::moe_route(p, N, logits.value().f32(), bias.f32()));
  MoeResult res;
  res.y = Var(Tensor::empty({N, D}), needs_grad({&x, &logits, &w_gate_up, &w_down}));
  auto saved = res.y.requires_grad() ? std::make_shared<ops::MoeSaved>() : nullptr;
  ops::moe_grouped_fwd(p, *r, D, x.value().f32(), weights(), res.y.value().f32(), saved.get());
  res.expert = r->expert, res.routed = r->routed, res.dropped = r->dropped;
  if (res.y.requires_grad()) {
    record([x, logits, w_gate_up, w_down, p, r, saved, weights, out = res.y.shared(), N, D] {
      if (!out->grad.defined()) return;
      Tensor dx = Tensor::empty({N, D}), dw = Tensor::empty({N * p.k});
      Tensor d1 = w_gate_up.requires_grad() ? w_gate_up.grad_buffer() : Tensor::zeros(w_gate_up.shape());
      Tensor d2 = w_down.requires_grad() ? w_down.grad_buffer() : Tensor::zeros(w_down.shape());
      ops::moe_grouped_bwd(p, *r, D, weights(), *saved, out->grad.f32(), dx.f32(), dw.f32(), d1.f32(), d2.f32());
      out->grad = Tensor();
      if (x.requires_grad()) accumulate(x, dx);
      if (logits.requires_grad()) {
        Tensor dl = Tensor::empty(logits.shape());
        ops::moe_route_bwd(p, *r, logits.value().f32(), dw.f32(), dl.f32());
        accumulate(logits, dl);
      }
    });
  }
  return res;
}

Var moe_balance(const Var& logits, const std::vector<int32_t>& expert, const ops::MoeParams& p,
                const ops::MoeBalanceParams& b, double* terms) {
  const int64_t N = logits.dim(0);
  Tensor t = Tensor::empty({3});
  ops::moe_balance_fwd<float>(p, b, N, logits.value().f32(), expert.data(), t.f32());
  for (int i = 0; i < 3; ++i) terms[i] = t.f32()[i];
  Var loss(Tensor::full({1}, t.f32()[0] + t.f32()[1] + t.f32()[2]), needs_grad({&logits}));
  if (loss.requires_grad()) {
    record([logits, expert, p, b, out = loss.shared(), N] {
      if (!out->grad.defined()) return;
      const float d = out->grad.f32()[0], d_terms[3] = {d, d, d};
      Tensor dl = Tensor::empty(logits.shape());
      ops::moe_balance_bwd<float>(p, b, N, logits.value().f32(), expert.data(), d_terms, dl.f32());
      out->grad = Tensor();
      accumulate(logits, dl);
    });
  }
  return loss;
}

}  // namespace speedlm::ag
