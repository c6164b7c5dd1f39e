// Differentiable mixture-of-experts functions over Var (ops/moe): the routed experts as one
// node (router weights, grouped GEMMs, combine) and the balancing losses on the router logits.
#pragma once

#include <vector>

#include "autograd/var.h"
#include "ops/moe/moe.h"

namespace speedlm::ag {

struct MoeResult {
  Var y;                        // [N, D]
  std::vector<int32_t> expert;  // [N*k] chosen experts (before capacity drops)
  std::vector<int64_t> routed;  // [E] slots routed to each expert
  int64_t dropped = 0;          // slots dropped by the capacity limit
};

// x: [N, D]  logits: [N, E]  bias: [E] (selection only, no gradient)
// w_gate_up: [E, 2F, D]  w_down: [E, D, F]. Gradients reach x, logits and both weights.
// p.bf16 is set from the matmul precision (bf16 for N > 1, like linear()).
MoeResult moe(const Var& x, const Var& logits, const Tensor& bias, const Var& w_gate_up, const Var& w_down,
              ops::MoeParams p);

// logits: [N, E]  expert: [N*k] -> scalar sum of the three scaled balance terms, which are
// also written to terms[0..2] (aux, z, seq_aux).
Var moe_balance(const Var& logits, const std::vector<int32_t>& expert, const ops::MoeParams& p,
                const ops::MoeBalanceParams& b, double* terms);

}  // namespace speedlm::ag
