// Simple GLA: a linear recurrence with one scalar log gate per head and step.
//   q, k: [B, T, H, K]   v: [B, T, H, V]   g: [B, T, H] (log decay, <= 0; nullptr = no decay)
//   h0, ht: [B, H, K, V] f32 (nullptr = zero initial state / final state not wanted)
//   o: [B, T, H, V]
// S_t = exp(g_t) S_{t-1} + k_t v_t^T,  o_t = scale * S_t^T q_t,  S_{-1} = h0, ht = S_{T-1}.
// g = 0 is linear attention, a fixed per-head g is RetNet's retention, g = dt * A is Mamba-2's SSD.
// Chunk form (README.md): per chunk of C tokens, O = scale (Q o exp(G)) S_n + ((Q K^T) o Gamma o M) V
// with G the in-chunk cumsum of g and Gamma_ts = exp(G_t - G_s), s <= t; states pass K x V per chunk.
#pragma once

#include <cstdint>

#include "speedlm/tensor.h"

namespace speedlm::ops {

struct SimpleGlaParams {
  float scale = 0.0f;  // 0 means 1/sqrt(K)
  int64_t chunk = 64;  // chunk length of the chunk form (any value >= 1; 64 is the measured default)
};

struct SimpleGlaDims {
  int64_t B = 1, T = 0, H = 1, K = 0, V = 0;
};

Status simple_gla_check(const SimpleGlaParams& p, const SimpleGlaDims& d);

// Reference: the token recurrence with accumulators in T (double = the spec).
template <typename T>
void simple_gla_ref_fwd(const SimpleGlaParams& p, const SimpleGlaDims& d, const T* q, const T* k, const T* v,
                        const T* g, const T* h0, T* o, T* ht);
// d_ht may be nullptr (zero); dg is written when g is given, dh0 when h0 is given.
template <typename T>
void simple_gla_ref_bwd(const SimpleGlaParams& p, const SimpleGlaDims& d, const T* q, const T* k, const T* v,
                        const T* g, const T* h0, const T* d_o, const T* d_ht, T* dq, T* dk, T* dv, T* dg, T* dh0);

// Chunk form (training, prefill). Every gradient output is overwritten.
void simple_gla_chunk_fwd(const SimpleGlaParams& p, const SimpleGlaDims& d, const float* q, const float* k,
                          const float* v, const float* g, const float* h0, float* o, float* ht);
void simple_gla_chunk_bwd(const SimpleGlaParams& p, const SimpleGlaDims& d, const float* q, const float* k,
                          const float* v, const float* g, const float* h0, const float* d_o, const float* d_ht,
                          float* dq, float* dk, float* dv, float* dg, float* dh0);

// Step form (decode): T tokens one at a time, state: [B, H, K, V] updated in place.
void simple_gla_step_fwd(const SimpleGlaParams& p, const SimpleGlaDims& d, const float* q, const float* k,
                         const float* v, const float* g, float* state, float* o);
// Its backward is the reverse token recurrence, the reference loops run in f32.
void simple_gla_step_bwd(const SimpleGlaParams& p, const SimpleGlaDims& d, const float* q, const float* k,
                         const float* v, const float* g, const float* h0, const float* d_o, const float* d_ht,
                         float* dq, float* dk, float* dv, float* dg, float* dh0);

}  // namespace speedlm::ops
