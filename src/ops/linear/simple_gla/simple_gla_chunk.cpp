// Chunk form of simple GLA. The shared machinery (ops/linear/common/chunk_engine.h) does the
// state pass; with a scalar gate the intra-chunk scores are one GEMM times the decay matrix
// Gamma_ts = exp(G_t - G_s) (s <= t, exponent <= 0, masked before exponentiating).
#include <cmath>

#include "core/simd_math.h"
#include "ops/linear/common/chunk_engine.h"
#include "ops/linear/common/small_gemm.h"
#include "ops/linear/simple_gla/simple_gla.h"

namespace speedlm::ops {

namespace {

using linear_chunk::ChunkView;

// M[t, s] *= scale * exp(G_t - G_s) for s < t (s <= t with the diagonal), 0 elsewhere (the
// gate is column 0 of G).
void apply_decay(const ChunkView& c, float scale, bool with_diagonal, float* M) {
  for (int64_t t = 0; t < c.L; ++t) {
    const float Gt = c.G[t * c.K];
    float* row = M + t * c.L;
    const int64_t end = with_diagonal ? t + 1 : t;
#pragma omp simd
    for (int64_t s = 0; s < end; ++s) row[s] *= scale * exp_f32(Gt - c.G[s * c.K]);
    for (int64_t s = end; s < c.L; ++s) row[s] = 0.0f;
  }
}

void scores(const ChunkView& c, float scale, float* A) {
  small_gemm(false, true, c.L, c.L, c.K, 1.0f, c.q, c.ldk, c.k, c.ldk, 0.0f, A, c.L);
  apply_decay(c, scale, true, A);
}

// dP = scale dA o Gamma strictly below the diagonal (in place): dq += dP K, dk += dP^T Q.
void score_grads(const ChunkView& c, float scale, float* dP, float* dq, float* dk, int64_t ld) {
  apply_decay(c, scale, false, dP);
  small_gemm(false, false, c.L, c.K, c.L, 1.0f, dP, c.L, c.k, c.ldk, 1.0f, dq, ld);
  small_gemm(true, false, c.L, c.K, c.L, 1.0f, dP, c.L, c.q, c.ldk, 1.0f, dk, ld);
}

linear_chunk::Problem problem(const SimpleGlaParams& p, const SimpleGlaDims& d, bool gated) {
  float scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(d.K));
  return {d.B, d.T, d.H, d.K, d.V, p.chunk, gated ? 1 : 0, scale};
}

}  // namespace

void simple_gla_chunk_fwd(const SimpleGlaParams& p, const SimpleGlaDims& d, const float* q, const float* k,
                          const float* v, const float* g, const float* h0, float* o, float* ht) {
  linear_chunk::chunk_fwd(problem(p, d, g != nullptr), {scores, score_grads}, q, k, v, g, h0, o, ht);
}

void simple_gla_chunk_bwd(const SimpleGlaParams& p, const SimpleGlaDims& d, const float* q, const float* k,
                          const float* v, const float* g, const float* h0, const float* d_o, const float* d_ht,
                          float* dq, float* dk, float* dv, float* dg, float* dh0) {
  linear_chunk::chunk_bwd(problem(p, d, g != nullptr), {scores, score_grads}, q, k, v, g, h0, d_o, d_ht, dq, dk, dv,
                          dg, dh0);
}

}  // namespace speedlm::ops
