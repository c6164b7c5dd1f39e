// Softmax attention with GQA/MQA: reference, plain O(Tq*Tk)-block form and the tiled flash form.
//   q: [B, Tq, H, Dh]   k, v: [B, Tk, KVH, Dh]   H % KVH == 0; query head h reads kv head h / (H / KVH)
//   o: [B, Tq, H, Dh]   lse: [B, H, Tq] (log-sum-exp of the scores, sink included, saved for backward)
//   sinks: [H] or null (a learned logit per head that joins the softmax denominator only)
// s_ij = scale * q_i . k_j (then softcap * tanh(s / softcap) when softcap > 0),
// p = softmax over the visible keys (and the sink), o_i = sum_j p_ij v_j.
// Masks are bottom-right aligned (FlashAttention convention): with i' = i + Tk - Tq, query i sees
// key j iff j <= i' (causal) and i' - window < j (window > 0), so Tq < Tk is a query block
// appended after a cached prefix.
// Packed variable-length sequences: with cu_seqlens [seqs + 1] set, B = 1 and Tq = Tk =
// cu_seqlens[seqs]; sequence s holds rows [cu_seqlens[s], cu_seqlens[s + 1]) and attends only to
// itself (the mask above applies inside each sequence).
// Backward: dP = dO V^T, D_i = rowsum(dO_i * O_i), dS = P * (dP - D) (times 1 - tanh^2 with a
// softcap), dQ = scale dS K, dK = scale dS^T Q, dV = P^T dO (dK, dV summed over the query heads of
// a group), d_sink_h = -sum_i P_sink,i D_i. README.md has the derivation.
#pragma once

#include <algorithm>
#include <cstdint>

#include "speedlm/tensor.h"

namespace speedlm::ops {

struct AttentionParams {
  float scale = 0.0f;  // 0 means 1/sqrt(Dh)
  bool causal = true;
  int64_t window = 0;    // 0: none; else keys j > i' - window only (a left sliding window of `window` keys)
  float softcap = 0.0f;  // 0: none; else s -> softcap * tanh(s / softcap)
  // Matmul operands rounded to bf16 with f32 accumulation and an f32 softmax: the bf16 training
  // mode. Only the plain form reads it; the reference is exact.
  bool bf16 = false;
};

struct AttentionDims {
  int64_t B = 1, Tq = 0, Tk = 0, H = 1, KVH = 1, Dh = 0;
  int64_t seqs = 0;                     // packed sequences (with cu_seqlens)
  const int32_t* cu_seqlens = nullptr;  // [seqs + 1] cumulative offsets, or null
};

Status attention_check(const AttentionParams& p, const AttentionDims& d);

// One independent sequence: batch entry b (0 when packed), its first query and key rows and lengths.
struct AttentionSeq {
  int64_t b, q0, k0, Tq, Tk;
};
inline int64_t attention_num_seqs(const AttentionDims& d) { return d.cu_seqlens ? d.seqs : d.B; }
inline AttentionSeq attention_seq(const AttentionDims& d, int64_t s) {
  if (!d.cu_seqlens) return {s, 0, 0, d.Tq, d.Tk};
  const int64_t r0 = d.cu_seqlens[s], n = d.cu_seqlens[s + 1] - r0;
  return {0, r0, r0, n, n};
}
// Keys [lo, hi) of sequence `s` visible to its query i (sequence-local indices); never empty
// when attention_check passes.
struct KeyRange {
  int64_t lo, hi;
};
inline KeyRange attention_keys(const AttentionParams& p, const AttentionSeq& s, int64_t i) {
  const int64_t diag = i + s.Tk - s.Tq;
  return {p.window > 0 ? std::max<int64_t>(0, diag - p.window + 1) : 0, p.causal ? diag + 1 : s.Tk};
}

template <typename T>
void attention_ref_fwd(const AttentionParams& p, const AttentionDims& d, const T* q, const T* k, const T* v, T* o,
                       T* lse, const T* sinks = nullptr);
// d_sinks [H] is written when sinks is given.
template <typename T>
void attention_ref_bwd(const AttentionParams& p, const AttentionDims& d, const T* q, const T* k, const T* v,
                       const T* d_o, T* dq, T* dk, T* dv, const T* sinks = nullptr, T* d_sinks = nullptr);

void attention_plain_fwd(const AttentionParams& p, const AttentionDims& d, const float* q, const float* k,
                         const float* v, float* o, float* lse, const float* sinks = nullptr);
// dq, dk, dv (and d_sinks when sinks is given) are overwritten.
void attention_plain_bwd(const AttentionParams& p, const AttentionDims& d, const float* q, const float* k,
                         const float* v, const float* o, const float* lse, const float* d_o, float* dq, float* dk,
                         float* dv, const float* sinks = nullptr, float* d_sinks = nullptr);

// Tiled online-softmax form (FlashAttention-2): extra memory O(Tq + Tk), never a score row.
// f32 only (ignores p.bf16).
void attention_flash_fwd(const AttentionParams& p, const AttentionDims& d, const float* q, const float* k,
                         const float* v, float* o, float* lse, const float* sinks = nullptr);
void attention_flash_bwd(const AttentionParams& p, const AttentionDims& d, const float* q, const float* k,
                         const float* v, const float* o, const float* lse, const float* d_o, float* dq, float* dk,
                         float* dv, const float* sinks = nullptr, float* d_sinks = nullptr);

}  // namespace speedlm::ops
