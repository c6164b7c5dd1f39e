// Differentiable wrappers of the recurrent ops (training path: zero initial state, no final
// state). Activations are [B*T, H*X]: the same memory as the ops' [B, T, H, X].
#pragma once

#include "autograd/var.h"
#include "ops/conv/causal_conv1d/causal_conv1d.h"
#include "ops/linear/gla/gla.h"
#include "ops/linear/simple_gla/simple_gla.h"

namespace speedlm::ag {

// q, k: [B*T, H*K]  v: [B*T, H*V]  g: [B*T, H] or an undefined Var (no decay)  ->  o: [B*T, H*V]
Var simple_gla(const Var& q, const Var& k, const Var& v, const Var& g, const ops::SimpleGlaDims& d,
               const ops::SimpleGlaParams& p);
// q, k, g: [B*T, H*K]  v: [B*T, H*V]  ->  o: [B*T, H*V]
Var gla(const Var& q, const Var& k, const Var& v, const Var& g, const ops::GlaDims& d, const ops::GlaParams& p);
// x: [B*T, D]  w: [D, W]  bias: [D]  ->  [B*T, D]
Var causal_conv1d(const Var& x, const Var& w, const Var& bias, const ops::CausalConv1dDims& d,
                  const ops::CausalConv1dParams& p);

}  // namespace speedlm::ag
