// GLA: a linear recurrence with a log gate per head, step and key channel.
//   q, k: [B, T, H, K]   v: [B, T, H, V]   g: [B, T, H, K] (log decay, <= 0)
//   h0, ht: [B, H, K, V] f32 (nullptr = zero initial state / final state not wanted)
//   o: [B, T, H, V]
// S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T,  o_t = scale * S_t^T q_t.
// Chunk form (README.md): the state pass of simple_gla with a per-row decay; the intra-chunk
// scores A_ts = sum_k q_tk k_sk exp(G_tk - G_sk) are not one GEMM, so the chunk is cut into
// 16-token sub-chunks: off-diagonal blocks are GEMMs of rescaled q and k (both factors <= 1,
// algorithms.md §1.3 rule 4), diagonal blocks are computed element-wise.
#pragma once

#include <cstdint>

#include "speedlm/tensor.h"

namespace speedlm::ops {

struct GlaParams {
  float scale = 0.0f;  // 0 means 1/sqrt(K)
  int64_t chunk = 64;  // chunk length (>= 1); sub-chunks are 16 tokens
};

struct GlaDims {
  int64_t B = 1, T = 0, H = 1, K = 0, V = 0;
};

Status gla_check(const GlaParams& p, const GlaDims& d);

template <typename T>
void gla_ref_fwd(const GlaParams& p, const GlaDims& d, const T* q, const T* k, const T* v, const T* g, const T* h0,
                 T* o, T* ht);
// d_ht may be nullptr (zero); dh0 is written when h0 is given.
template <typename T>
void gla_ref_bwd(const GlaParams& p, const GlaDims& d, const T* q, const T* k, const T* v, const T* g, const T* h0,
                 const T* d_o, const T* d_ht, T* dq, T* dk, T* dv, T* dg, T* dh0);

void gla_chunk_fwd(const GlaParams& p, const GlaDims& d, const float* q, const float* k, const float* v,
                   const float* g, const float* h0, float* o, float* ht);
void gla_chunk_bwd(const GlaParams& p, const GlaDims& d, const float* q, const float* k, const float* v,
                   const float* g, const float* h0, const float* d_o, const float* d_ht, float* dq, float* dk,
                   float* dv, float* dg, float* dh0);

// Decode: T tokens one at a time, state: [B, H, K, V] updated in place.
void gla_step_fwd(const GlaParams& p, const GlaDims& d, const float* q, const float* k, const float* v,
                  const float* g, float* state, float* o);
// The reverse token recurrence (the reference loops in f32).
void gla_step_bwd(const GlaParams& p, const GlaDims& d, const float* q, const float* k, const float* v,
                  const float* g, const float* h0, const float* d_o, const float* d_ht, float* dq, float* dk,
                  float* dv, float* dg, float* dh0);

}  // namespace speedlm::ops
