// Chunk form of GLA: the shared state pass (ops/linear/common/chunk_engine.h) plus the
// intra-chunk scores with per-channel gates through 16-token sub-chunks (README.md).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/simd_math.h"
#include "ops/linear/common/chunk_engine.h"
#include "ops/linear/common/small_gemm.h"
#include "ops/linear/gla/gla.h"

namespace speedlm::ops {

namespace {

using linear_chunk::ChunkView;
constexpr int64_t kSub = 16;

// out[j, k] = x[j, k] * exp(sign * (G[j, k] - r[k])) for rows j in [j0, j1); callers pick the sign
// and reference r so that every exponent is <= 0, except on a diagonal block whose range is
// bounded by kMaxGemmRange.
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

// A sub-chunk whose gates move by less than this (per channel, first row to last) also takes its
// diagonal block through the rescaled GEMM: the factors exp(G_t - r), exp(r - G_s) then lie in
// [e^-60, e^60], far inside f32 (overflow at e^88). Stronger decay is summed element-wise.
constexpr float kMaxGemmRange = 60.0f;

bool diagonal_by_gemm(const ChunkView& c, int64_t i0, int64_t i1) {
  float range = 0.0f;
  for (int64_t kk = 0; kk < c.K; ++kk) range = std::max(range, c.G[i0 * c.K + kk] - c.G[(i1 - 1) * c.K + kk]);
  return range <= kMaxGemmRange;
}

// The one-block factors of a chunk (reference G_0): F = exp(G - G_0) <= 1, Finv = exp(G_0 - G)
// <= e^60, Qt = q o F, Kt = k o Finv, all [L, K]. `scores` fills them; `score_grads`, which the
// engine calls right after `scores` of the same chunk on the same thread, reuses them (key check
// below), so the backward pays these exps once per chunk, not three times.
struct OneBlock {
  std::vector<float> F, Finv, Qt, Kt;
  const float *q = nullptr, *k = nullptr;
  int64_t L = 0;
};

// fresh: recompute even if the key matches (`scores` may see new values at the same addresses).
OneBlock& one_block(const ChunkView& c, bool fresh) {
  thread_local OneBlock b;
  if (!fresh && b.q == c.q && b.k == c.k && b.L == c.L) return b;
  const int64_t L = c.L, K = c.K;
  float *F = scratch(b.F, L * K), *Fi = scratch(b.Finv, L * K);
  float *Qt = scratch(b.Qt, L * K), *Kt = scratch(b.Kt, L * K);
  for (int64_t t = 0; t < L; ++t) {
    const float *Gt = c.G + t * K, *qt = c.q + t * c.ldk, *kt = c.k + t * c.ldk;
#pragma omp simd
    for (int64_t kk = 0; kk < K; ++kk) {
      const float d = Gt[kk] - c.G[kk], f = exp_f32(d), fi = exp_f32(-d);
      F[t * K + kk] = f, Fi[t * K + kk] = fi;
      Qt[t * K + kk] = qt[kk] * f, Kt[t * K + kk] = kt[kk] * fi;
    }
  }
  b.q = c.q, b.k = c.k, b.L = L;
  return b;
}

// Element-wise diagonal block: A_ts = scale sum_k q_tk k_sk exp(G_tk - G_sk), s <= t.
void diagonal_scores(const ChunkView& c, float scale, int64_t i0, int64_t i1, float* A) {
  for (int64_t t = i0; t < i1; ++t)
    for (int64_t s = i0; s <= t; ++s) {
      const float *qt = c.q + t * c.ldk, *ks = c.k + s * c.ldk, *Gt = c.G + t * c.K, *Gs = c.G + s * c.K;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int64_t kk = 0; kk < c.K; ++kk) acc += qt[kk] * ks[kk] * exp_f32(Gt[kk] - Gs[kk]);
      A[t * c.L + s] = scale * acc;
    }
}

// A chunk whose gates move by at most kMaxGemmRange is one block: reference r = G_0, q~_t =
// q_t exp(G_t - r) <= q_t, k~_s = k_s exp(r - G_s) <= k_s e^60, one L x L GEMM masked to s <= t.
// Otherwise, per query sub-chunk [i0, i1) with reference r = G_{i0}: q~_t = q_t exp(G_t - r) (t >= i0) and
// k~_s = k_s exp(r - G_s) (s < i0) make the off-diagonal block one GEMM; the diagonal block joins
// that GEMM (then masked) when its gate range allows, else it is summed element-wise.
void scores(const ChunkView& c, float scale, float* A) {
  thread_local std::vector<float> qbuf, kbuf;
  const int64_t L = c.L, K = c.K;
  if (diagonal_by_gemm(c, 0, L)) {  // the whole chunk as one block, reference G_0
    const OneBlock& b = one_block(c, true);
    small_gemm(false, true, L, L, K, scale, b.Qt.data(), K, b.Kt.data(), K, 0.0f, A, L);
    for (int64_t t = 0; t < L; ++t) std::fill(A + t * L + t + 1, A + (t + 1) * L, 0.0f);
    return;
  }
  float *Qt = scratch(qbuf, kSub * K), *Kt = scratch(kbuf, L * K);
  std::fill(A, A + L * L, 0.0f);
  for (int64_t i0 = 0; i0 < L; i0 += kSub) {
    const int64_t i1 = std::min(i0 + kSub, L);
    const float* r = c.G + i0 * K;
    const bool diag = diagonal_by_gemm(c, i0, i1);
    const int64_t cols = diag ? i1 : i0;
    if (cols > 0) {
      rescale(c.q, c.ldk, c.G, K, r, 1.0f, i0, i1, Qt);
      rescale(c.k, c.ldk, c.G, K, r, -1.0f, 0, cols, Kt);
      small_gemm(false, true, i1 - i0, cols, K, scale, Qt, K, Kt, K, 0.0f, A + i0 * L, L);
    }
    if (diag) {
      for (int64_t t = i0; t < i1; ++t) std::fill(A + t * L + t + 1, A + t * L + i1, 0.0f);
    } else {
      diagonal_scores(c, scale, i0, i1, A);
    }
  }
}

// The transpose of `scores`, strictly below the diagonal: for a one-block chunk two L x L GEMMs
// with reference G_0; otherwise dq through the query-side reference of
// each query sub-chunk, dk through the reference G_{j1-1} (last row) of each key sub-chunk
// [j0, j1), whose later queries get q~_t = q_t exp(G_t - G_{j1-1}) and keys the factor
// exp(G_{j1-1} - G_s). GEMM-able diagonal blocks enter with dA masked to s < t.
void score_grads(const ChunkView& c, float scale, float* dA, float* dq, float* dk, int64_t ld) {
  thread_local std::vector<float> abuf, tbuf, mbuf;
  const int64_t L = c.L, K = c.K;
  float *X = scratch(abuf, L * K), *tmp = scratch(tbuf, L * K), *M = scratch(mbuf, L * L);
  // M = dA with every entry at or above the diagonal zeroed.
  for (int64_t t = 0; t < L; ++t)
    for (int64_t s = 0; s < L; ++s) M[t * L + s] = s < t ? dA[t * L + s] : 0.0f;
  if (diagonal_by_gemm(c, 0, L)) {  // as `scores`: one block, reference G_0, its factors reused
    const OneBlock& b = one_block(c, false);
    const float *F = b.F.data(), *Fi = b.Finv.data();
    small_gemm(false, false, L, K, L, scale, M, L, b.Kt.data(), K, 0.0f, tmp, K);
    for (int64_t t = 0; t < L; ++t) {
#pragma omp simd
      for (int64_t kk = 0; kk < K; ++kk) dq[t * ld + kk] += tmp[t * K + kk] * F[t * K + kk];
    }
    small_gemm(true, false, L, K, L, scale, M, L, b.Qt.data(), K, 0.0f, tmp, K);
    for (int64_t s = 0; s < L; ++s) {
#pragma omp simd
      for (int64_t kk = 0; kk < K; ++kk) dk[s * ld + kk] += tmp[s * K + kk] * Fi[s * K + kk];
    }
    return;
  }
  std::vector<char> diag_gemm;
  for (int64_t i0 = 0; i0 < L; i0 += kSub) diag_gemm.push_back(diagonal_by_gemm(c, i0, std::min(i0 + kSub, L)));
  for (int64_t i0 = 0; i0 < L; i0 += kSub) {
    const int64_t i1 = std::min(i0 + kSub, L), cols = diag_gemm[i0 / kSub] ? i1 : i0;
    if (cols == 0) continue;
    const float* r = c.G + i0 * K;
    rescale(c.k, c.ldk, c.G, K, r, -1.0f, 0, cols, X);
    small_gemm(false, false, i1 - i0, K, cols, scale, M + i0 * L, L, X, K, 0.0f, tmp, K);
    for (int64_t t = i0; t < i1; ++t) {
#pragma omp simd
      for (int64_t kk = 0; kk < K; ++kk) dq[t * ld + kk] += tmp[(t - i0) * K + kk] * exp_f32(c.G[t * K + kk] - r[kk]);
    }
  }
  for (int64_t j0 = 0; j0 < L; j0 += kSub) {
    const int64_t j1 = std::min(j0 + kSub, L), rows0 = diag_gemm[j0 / kSub] ? j0 : j1;
    if (rows0 >= L) continue;
    const float* r = c.G + (j1 - 1) * K;
    rescale(c.q, c.ldk, c.G, K, r, 1.0f, rows0, L, X);
    small_gemm(true, false, j1 - j0, K, L - rows0, scale, M + rows0 * L + j0, L, X, K, 0.0f, tmp, K);
    for (int64_t s = j0; s < j1; ++s) {
#pragma omp simd
      for (int64_t kk = 0; kk < K; ++kk) dk[s * ld + kk] += tmp[(s - j0) * K + kk] * exp_f32(r[kk] - c.G[s * K + kk]);
    }
  }
  for (int64_t i0 = 0; i0 < L; i0 += kSub) {
    if (diag_gemm[i0 / kSub]) continue;
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
