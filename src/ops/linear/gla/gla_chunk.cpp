// Chunk form of GLA: the shared state pass (ops/linear/common/chunk_engine.h) plus the
// intra-chunk scores with per-channel gates through 16-token sub-chunks (README.md).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/simd_math.h"
#include "ops/linalg/gemm/gemm.h"
#include "ops/linear/common/chunk_engine.h"
#include "ops/linear/gla/gla.h"

namespace speedlm::ops {

namespace {

using linear_chunk::ChunkView;
constexpr int64_t kSub = 16;

// out[j, k] = x[j, k] * exp(sign * (G[j, k] - r[k])) for rows j in [j0, j1); callers pick the sign
// and reference r so that every exponent is <= 0.
void rescale(const float* x, int64_t ldx, const float* G, int64_t K, const float* r, float sign, int64_t j0,
             int64_t j1, float* out) {
  for (int64_t j = j0; j < j1; ++j) {
#pragma omp simd
    for (int64_t kk = 0; kk < K; ++kk)
      out[(j - j0) * K + kk] = x[j * ldx + kk] * exp_f32(sign * (G[j * K + kk] - r[kk]));
  }
}

float* scratch(std::vector<float>& buf, size_t n) {
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// Per query sub-chunk [i0, i1) with reference r = G_{i0}: q~_t = q_t exp(G_t - r) (t >= i0) and
// k~_s = k_s exp(r - G_s) (s < i0) make the off-diagonal block one GEMM; the diagonal block
// sums exp(G_t - G_s) element-wise.
void scores(const ChunkView& c, float scale, float* A) {
  thread_local std::vector<float> qbuf, kbuf;
  const int64_t L = c.L, K = c.K;
  float *Qt = scratch(qbuf, kSub * K), *Kt = scratch(kbuf, L * K);
  std::fill(A, A + L * L, 0.0f);
  for (int64_t i0 = 0; i0 < L; i0 += kSub) {
    const int64_t i1 = std::min(i0 + kSub, L);
    const float* r = c.G + i0 * K;
    if (i0 > 0) {
      rescale(c.q, c.ldk, c.G, K, r, 1.0f, i0, i1, Qt);
      rescale(c.k, c.ldk, c.G, K, r, -1.0f, 0, i0, Kt);
      gemm(false, true, i1 - i0, i0, K, scale, Qt, K, Kt, K, 0.0f, A + i0 * L, L);
    }
    for (int64_t t = i0; t < i1; ++t)
      for (int64_t s = i0; s <= t; ++s) {
        const float *qt = c.q + t * c.ldk, *ks = c.k + s * c.ldk, *Gt = c.G + t * K, *Gs = c.G + s * K;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t kk = 0; kk < K; ++kk) acc += qt[kk] * ks[kk] * exp_f32(Gt[kk] - Gs[kk]);
        A[t * L + s] = scale * acc;
      }
  }
}

// The transpose of `scores`: dq through the query-side reference of each query sub-chunk,
// dk through the reference G_{j1-1} (last row) of each key sub-chunk [j0, j1), whose later
// queries t >= j1 get q~_t = q_t exp(G_t - G_{j1-1}) and keys k-factor exp(G_{j1-1} - G_s).
void score_grads(const ChunkView& c, float scale, float* dA, float* dq, float* dk, int64_t ld) {
  thread_local std::vector<float> abuf, bbuf, tbuf;
  const int64_t L = c.L, K = c.K;
  float *X = scratch(abuf, L * K), *Y = scratch(bbuf, L * K), *tmp = scratch(tbuf, L * K);
  for (int64_t i0 = kSub; i0 < L; i0 += kSub) {
    const int64_t i1 = std::min(i0 + kSub, L);
    const float* r = c.G + i0 * K;
    rescale(c.k, c.ldk, c.G, K, r, -1.0f, 0, i0, X);
    gemm(false, false, i1 - i0, K, i0, scale, dA + i0 * L, L, X, K, 0.0f, tmp, K);
    for (int64_t t = i0; t < i1; ++t) {
#pragma omp simd
      for (int64_t kk = 0; kk < K; ++kk) dq[t * ld + kk] += tmp[(t - i0) * K + kk] * exp_f32(c.G[t * K + kk] - r[kk]);
    }
  }
  for (int64_t j0 = 0; j0 + kSub < L; j0 += kSub) {
    const int64_t j1 = j0 + kSub;
    const float* r = c.G + (j1 - 1) * K;
    rescale(c.q, c.ldk, c.G, K, r, 1.0f, j1, L, Y);
    gemm(true, false, j1 - j0, K, L - j1, scale, dA + j1 * L + j0, L, Y, K, 0.0f, tmp, K);
    for (int64_t s = j0; s < j1; ++s) {
#pragma omp simd
      for (int64_t kk = 0; kk < K; ++kk) dk[s * ld + kk] += tmp[(s - j0) * K + kk] * exp_f32(r[kk] - c.G[s * K + kk]);
    }
  }
  for (int64_t i0 = 0; i0 < L; i0 += kSub) {
    const int64_t i1 = std::min(i0 + kSub, L);
    for (int64_t t = i0; t < i1; ++t)
      for (int64_t s = i0; s < t; ++s) {
        const float w = scale * dA[t * L + s];
        const float *qt = c.q + t * c.ldk, *ks = c.k + s * c.ldk, *Gt = c.G + t * K, *Gs = c.G + s * K;
        float *dqt = dq + t * ld, *dks = dk + s * ld;
#pragma omp simd
        for (int64_t kk = 0; kk < K; ++kk) {
          const float e = w * exp_f32(Gt[kk] - Gs[kk]);
          dqt[kk] += e * ks[kk];
          dks[kk] += e * qt[kk];
        }
      }
  }
}

linear_chunk::Problem problem(const GlaParams& p, const GlaDims& d) {
  float scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(d.K));
  return {d.B, d.T, d.H, d.K, d.V, p.chunk, d.K, scale};
}

}  // namespace

void gla_chunk_fwd(const GlaParams& p, const GlaDims& d, const float* q, const float* k, const float* v,
                   const float* g, const float* h0, float* o, float* ht) {
  linear_chunk::chunk_fwd(problem(p, d), {scores, score_grads}, q, k, v, g, h0, o, ht);
}

void gla_chunk_bwd(const GlaParams& p, const GlaDims& d, const float* q, const float* k, const float* v,
                   const float* g, const float* h0, const float* d_o, const float* d_ht, float* dq, float* dk,
                   float* dv, float* dg, float* dh0) {
  linear_chunk::chunk_bwd(problem(p, d), {scores, score_grads}, q, k, v, g, h0, d_o, d_ht, dq, dk, dv, dg, dh0);
}

}  // namespace speedlm::ops
