// Inference helpers shared by the recurrent mixers: run an op continuing from the state held
// in a RecurrentState and leave the new state there. Decode (few tokens) uses the step form,
// prefill the chunk form.
#pragma once

#include "memory/recurrent_state.h"
#include "ops/conv/causal_conv1d/causal_conv1d.h"
#include "ops/linear/gla/gla.h"
#include "ops/linear/simple_gla/simple_gla.h"

namespace speedlm::nn {

// Up to this many tokens per call the mixers use the token recurrence (K x V work per token, no
// buffers); longer inputs pay the chunk form's per-call costs (state checkpoints, C x C score
// blocks) once and run its GEMMs. Both forms are exact, so the value only moves speed.
constexpr int64_t kStepMaxTokens = 8;

// q, k: [B*T, H*K]  v: [B*T, H*V]  g: [B*T, H] or nullptr  S: [B, H, K, V] in/out  ->  o [B*T, H*V]
Tensor simple_gla_with_state(const Tensor& q, const Tensor& k, const Tensor& v, const float* g,
                             const ops::SimpleGlaDims& d, const ops::SimpleGlaParams& p, Tensor& S);
// g: [B*T, H*K]
Tensor gla_with_state(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const ops::GlaDims& d,
                      const ops::GlaParams& p, Tensor& S);
// x: [B*T, C]  window: [B, W-1, C] in/out  ->  [B*T, C]
Tensor conv_with_state(const Tensor& x, const Tensor& w, const Tensor& bias, const ops::CausalConv1dDims& d,
                       const ops::CausalConv1dParams& p, Tensor& window);

}  // namespace speedlm::nn
