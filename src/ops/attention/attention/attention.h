// Softmax attention with GQA/MQA, plain O(Tq*Tk) form (the tiled form is another issue).
//   q: [B, Tq, H, Dh]   k, v: [B, Tk, KVH, Dh]   H % KVH == 0; query head h reads kv head h / (H / KVH)
//   o: [B, Tq, H, Dh]   lse: [B, H, Tq] (log-sum-exp of the scaled scores, saved for backward)
// s_ij = scale * q_i . k_j, p = softmax_j(s), o_i = sum_j p_ij v_j.
// Causal masks are bottom-right aligned (FlashAttention convention): query i sees key j
// iff j <= i + Tk - Tq, so Tq < Tk is a query block appended after a cached prefix.
// Backward: dP = dO V^T, D_i = rowsum(dO_i * O_i), dS = P * (dP - D), dQ = scale dS K,
// dK = scale dS^T Q, dV = P^T dO (dK, dV summed over the query heads of a group).
#pragma once

#include <cstdint>

#include "speedlm/tensor.h"

namespace speedlm::ops {

struct AttentionParams {
  float scale = 0.0f;  // 0 means 1/sqrt(Dh)
  bool causal = true;
  // Matmul operands rounded to bf16 with f32 accumulation and an f32 softmax: the bf16 training
  // mode. Only the plain form reads it; the reference is exact.
  bool bf16 = false;
};

struct AttentionDims {
  int64_t B = 1, Tq = 0, Tk = 0, H = 1, KVH = 1, Dh = 0;
};

Status attention_check(const AttentionParams& p, const AttentionDims& d);

template <typename T>
void attention_ref_fwd(const AttentionParams& p, const AttentionDims& d, const T* q, const T* k, const T* v, T* o,
                       T* lse);
template <typename T>
void attention_ref_bwd(const AttentionParams& p, const AttentionDims& d, const T* q, const T* k, const T* v,
                       const T* d_o, T* dq, T* dk, T* dv);

void attention_plain_fwd(const AttentionParams& p, const AttentionDims& d, const float* q, const float* k,
                         const float* v, float* o, float* lse);
// dq, dk, dv are overwritten.
void attention_plain_bwd(const AttentionParams& p, const AttentionDims& d, const float* q, const float* k,
                         const float* v, const float* o, const float* lse, const float* d_o, float* dq, float* dk,
                         float* dv);

}  // namespace speedlm::ops
