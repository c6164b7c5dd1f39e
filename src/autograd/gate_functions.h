// Differentiable maps the delta-rule and selective-scan mixers compose on [N, F] activations
// (N = B*T): the write strength beta, per-head L2 normalisation of q/k, the log decays.
#pragma once

#include <vector>

#include "autograd/var.h"

namespace speedlm::ag {

// sigmoid(x) element-wise.
Var sigmoid(const Var& x);
// Each of the H heads of x [N, H*K] divided by sqrt(|x_head|^2 + eps) (FLA l2norm, eps inside
// the sqrt, algorithms.md §15).
Var l2norm_heads(const Var& x, int64_t H, float eps);
// q | k | v [N, 2 H K + H V] -> {l2norm_heads(q), l2norm_heads(k), v}: split_cols and the two
// norms in one function, which reads q and k in place and writes the whole input gradient in one
// pass (no copies of q and k, nor of their gradients).
std::vector<Var> l2norm_qk_split(const Var& qkv, int64_t H, int64_t K, int64_t V, float eps);
// softplus(x + bias), thresholded (u > 20 -> u).  x: [N, F]  bias: [F]
Var softplus_bias(const Var& x, const Var& bias);
// -exp(x) element-wise: the continuous-time decay A = -exp(A_log) of the SSMs.
Var neg_exp(const Var& x);
// The Gated DeltaNet log decay g = -exp(A_log) * softplus(a + dt_bias) (algorithms.md §5.4).
// a: [N, H]  dt_bias, a_log: [H]  ->  [N, H], g <= 0.
Var gdn_gate(const Var& a, const Var& dt_bias, const Var& a_log);

}  // namespace speedlm::ag
