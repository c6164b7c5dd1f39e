// Delta rule (DeltaNet), per head h, state S: [K, V] in f32:
//   S_t = (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,   o_t = scale * S_t^T q_t
//   q, k: [B, T, H, K]   v: [B, T, H, V]   beta: [B, T, H]   h0, ht: [B, H, K, V]   o: [B, T, H, V]
// It is the gated delta rule with g = 0: every entry point forwards to gated_delta_rule with a
// null gate (one kernel, no copy). README.md points to the shared derivation.
#pragma once

#include "ops/linear/gated_delta_rule/gated_delta_rule.h"

namespace speedlm::ops {

using DeltaRuleParams = GatedDeltaRuleParams;
using DeltaRuleDims = GatedDeltaRuleDims;

// dg of the grads is ignored (no gate).
inline Status delta_rule_check(const DeltaRuleParams& p, const DeltaRuleDims& d) {
  Status s = gated_delta_rule_check(p, d);
  // Same checks; the message names this op: "[gated_delta_rule] x" becomes "[delta_rule] x".
  return s.is_ok() ? s : Status::error("delta_rule", s.message().substr(s.message().find(']') + 2));
}

inline void delta_rule_ref_fwd(const DeltaRuleParams& p, const DeltaRuleDims& d, const double* q, const double* k,
                               const double* v, const double* beta, const double* h0, double* o, double* ht) {
  gated_delta_rule_ref_fwd(p, d, q, k, v, beta, nullptr, h0, o, ht);
}
inline void delta_rule_ref_bwd(const DeltaRuleParams& p, const DeltaRuleDims& d, const double* q, const double* k,
                               const double* v, const double* beta, const double* h0, const double* d_o,
                               const double* d_ht, GatedDeltaRuleGrads grads) {
  grads.dg = nullptr;
  gated_delta_rule_ref_bwd(p, d, q, k, v, beta, nullptr, h0, d_o, d_ht, grads);
}
inline void delta_rule_chunk_fwd(const DeltaRuleParams& p, const DeltaRuleDims& d, const float* q, const float* k,
                                 const float* v, const float* beta, const float* h0, float* o, float* ht) {
  gated_delta_rule_chunk_fwd(p, d, q, k, v, beta, nullptr, h0, o, ht);
}
inline void delta_rule_chunk_bwd(const DeltaRuleParams& p, const DeltaRuleDims& d, const float* q, const float* k,
                                 const float* v, const float* beta, const float* h0, const float* d_o,
                                 const float* d_ht, GatedDeltaRuleGradsF grads) {
  grads.dg = nullptr;
  gated_delta_rule_chunk_bwd(p, d, q, k, v, beta, nullptr, h0, d_o, d_ht, grads);
}
inline void delta_rule_step_fwd(const DeltaRuleParams& p, const DeltaRuleDims& d, const float* q, const float* k,
                                const float* v, const float* beta, float* state, float* o) {
  gated_delta_rule_step_fwd(p, d, q, k, v, beta, nullptr, state, o);
}
inline void delta_rule_step_bwd(const DeltaRuleParams& p, const DeltaRuleDims& d, const float* q, const float* k,
                                const float* v, const float* beta, const float* h0, const float* d_o,
                                const float* d_ht, GatedDeltaRuleGradsF grads) {
  grads.dg = nullptr;
  gated_delta_rule_step_bwd(p, d, q, k, v, beta, nullptr, h0, d_o, d_ht, grads);
}

}  // namespace speedlm::ops
