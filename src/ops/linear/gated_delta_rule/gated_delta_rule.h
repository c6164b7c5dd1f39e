// Gated delta rule (Gated DeltaNet), per head h, state S: [K, V] in f32:
//   S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,   o_t = scale * S_t^T q_t
// computed as S~ = exp(g_t) S_{t-1}; u_t = beta_t (v_t - S~^T k_t); S_t = S~ + k_t u_t^T.
//   q, k: [B, T, H, K]   v: [B, T, H, V]   beta, g: [B, T, H] (g in log space, g <= 0)
//   h0, ht: [B, H, K, V] (initial and final state; h0 may be null = zeros)
//   o: [B, T, H, V]
// g may be null: g = 0, the plain delta rule (ops/linear/delta_rule wraps that case).
// Keys are expected L2-normalised and beta in [0, 2] so every transition has eigenvalues in
// [-1, 1]; the op does not normalise (the mixer does). README.md has the chunk (WY/UT) form and
// the backward derivation.
#pragma once

#include <cstdint>

#include "speedlm/tensor.h"

namespace speedlm::ops {

struct GatedDeltaRuleParams {
  float scale = 0.0f;  // 0 means 1/sqrt(K)
  int64_t chunk = 32;  // chunk length C of the chunk form, in [1, 128] (32: fastest measured, BENCHMARKS.md)
};

struct GatedDeltaRuleDims {
  int64_t B = 1, T = 0, H = 1, K = 0, V = 0;
};

Status gated_delta_rule_check(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d);

// Gradient pointers: d_ht, g, h0 may be null (zero cotangent, zero gate, zero initial state);
// dg and dh0 may be null (not wanted). Every gradient written is overwritten, not accumulated.
struct GatedDeltaRuleGrads {
  double* dq = nullptr;
  double* dk = nullptr;
  double* dv = nullptr;
  double* dbeta = nullptr;
  double* dg = nullptr;
  double* dh0 = nullptr;
};
struct GatedDeltaRuleGradsF {
  float* dq = nullptr;
  float* dk = nullptr;
  float* dv = nullptr;
  float* dbeta = nullptr;
  float* dg = nullptr;
  float* dh0 = nullptr;
};

// Reference (the spec): token recurrence in double.
void gated_delta_rule_ref_fwd(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d, const double* q,
                              const double* k, const double* v, const double* beta, const double* g, const double* h0,
                              double* o, double* ht);
void gated_delta_rule_ref_bwd(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d, const double* q,
                              const double* k, const double* v, const double* beta, const double* g, const double* h0,
                              const double* d_o, const double* d_ht, const GatedDeltaRuleGrads& grads);

// Chunk form (training, prefill): WY/UT representation per chunk, threaded over (b, h).
void gated_delta_rule_chunk_fwd(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d, const float* q,
                                const float* k, const float* v, const float* beta, const float* g, const float* h0,
                                float* o, float* ht);
void gated_delta_rule_chunk_bwd(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d, const float* q,
                                const float* k, const float* v, const float* beta, const float* g, const float* h0,
                                const float* d_o, const float* d_ht, const GatedDeltaRuleGradsF& grads);

// Step form (decoding): T tokens one by one; `state` [B, H, K, V] is read and updated in place.
void gated_delta_rule_step_fwd(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d, const float* q,
                               const float* k, const float* v, const float* beta, const float* g, float* state,
                               float* o);
// Backward of the step form: recurrent, recomputing states from checkpoints every p.chunk tokens.
void gated_delta_rule_step_bwd(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d, const float* q,
                               const float* k, const float* v, const float* beta, const float* g, const float* h0,
                               const float* d_o, const float* d_ht, const GatedDeltaRuleGradsF& grads);

}  // namespace speedlm::ops
