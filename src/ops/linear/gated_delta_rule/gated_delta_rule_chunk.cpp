// Chunk form of the gated delta rule (README.md "Chunk form" and "Chunk backward"): per chunk of C
// tokens the WY/UT representation W = T diag(b e^G) K, U = T diag(b) V with T = (I + A)^-1 turns
// C rank-one updates into GEMMs. Each thread owns whole heads and walks groups of them chunk by
// chunk (each head's state is carried); all intra-chunk work are small GEMMs on contiguous tiles.
// Only non-positive exponents are ever formed (G is the chunk-local cumsum, exp(G_i - G_j), j <= i).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "core/simd_math.h"
#include "ops/linear/common/small_gemm.h"
#include "ops/linear/gated_delta_rule/gated_delta_rule.h"

namespace speedlm::ops {

namespace {

using Buf = std::vector<float>;

// One head's strided inputs and the chunk tiles gathered from them.
struct Head {
  const GatedDeltaRuleDims& d;
  int64_t C;
  float scale;
  const float *q, *k, *v, *beta, *g;  // already offset to (b, t = 0, h)
  Buf qc, kc, vc, bc, G;              // [C, K], [C, K], [C, V], [C], [C]
  Buf gam, eg, el;                     // Gamma [C, C] (0 above the diagonal), e^G [C], e^{G_c - G} [C]

  Head(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& dd, const float* q_, const float* k_, const float* v_,
       const float* beta_, const float* g_, int64_t bh)
      : d(dd), C(p.chunk), scale(p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(dd.K))) {
    const int64_t b = bh / d.H, h = bh % d.H, s = b * d.T * d.H + h;
    q = q_ + s * d.K;
    k = k_ + s * d.K;
    v = v_ + s * d.V;
    beta = beta_ + s;
    g = g_ ? g_ + s : nullptr;
    qc.resize(C * d.K), kc.resize(C * d.K), vc.resize(C * d.V), bc.resize(C), G.resize(C);
    gam.resize(C * C), eg.resize(C), el.resize(C);
  }
  int64_t chunks() const { return (d.T + C - 1) / C; }
  int64_t rows(int64_t n) const { return std::min(C, d.T - n * C); }

  // Gathers chunk n and its decay factors; returns its length c. G is the inclusive chunk-local
  // cumsum of g; exponents are masked to <= 0 before exp (never exp(-G) alone).
  int64_t gather(int64_t n) {
    const int64_t t0 = n * C, c = rows(n), K = d.K, V = d.V, HK = d.H * K, HV = d.H * V;
    float acc = 0.0f;
    for (int64_t t = 0; t < c; ++t) {
      std::memcpy(&qc[t * K], q + (t0 + t) * HK, sizeof(float) * K);
      std::memcpy(&kc[t * K], k + (t0 + t) * HK, sizeof(float) * K);
      std::memcpy(&vc[t * V], v + (t0 + t) * HV, sizeof(float) * V);
      bc[t] = beta[(t0 + t) * d.H];
      acc += g ? g[(t0 + t) * d.H] : 0.0f;
      G[t] = acc;
    }
    for (int64_t i = 0; i < c; ++i) {
      float* gi = &gam[i * C];
      const float Gi = G[i];
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) gi[j] = exp_f32(std::min(Gi - G[j], 0.0f)) * static_cast<float>(j <= i);
      eg[i] = exp_f32(std::min(Gi, 0.0f));
      el[i] = exp_f32(std::min(G[c - 1] - Gi, 0.0f));
    }
    return c;
  }
};

// kk = K K^T; A = strict_tril(diag(b) kk o Gamma); T = (I + A)^-1 by forward substitution
// (row i of T is e_i - sum_{m<i} A_im T_m). All [C, C], only the leading c x c used.
void wy_inverse(const Head& hd, int64_t c, float* kk, float* A, float* T) {
  const int64_t C = hd.C, K = hd.d.K;
  small_gemm(false, true, c, c, K, 1.0f, hd.kc.data(), K, hd.kc.data(), K, 0.0f, kk, C);
  for (int64_t i = 0; i < c; ++i) {
    float *Ai = A + i * C, *Ti = T + i * C;
    for (int64_t j = 0; j < c; ++j) {
      Ai[j] = j < i ? hd.bc[i] * kk[i * C + j] * hd.gam[i * C + j] : 0.0f;
      Ti[j] = j == i ? 1.0f : 0.0f;
    }
    for (int64_t m = 0; m < i; ++m) {
      const float a = Ai[m];
      const float* Tm = T + m * C;
      for (int64_t j = 0; j <= m; ++j) Ti[j] -= a * Tm[j];
    }
  }
}

// P = scale (Q K^T o Gamma), lower triangle including the diagonal.
void intra_scores(const Head& hd, int64_t c, float* P) {
  const int64_t C = hd.C, K = hd.d.K;
  small_gemm(false, true, c, c, K, 1.0f, hd.qc.data(), K, hd.kc.data(), K, 0.0f, P, C);
  for (int64_t i = 0; i < c; ++i)
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) P[i * C + j] = hd.scale * P[i * C + j] * hd.gam[i * C + j];
}

// What the backward keeps per head from its forward pass: entering states and the WY factors.
struct Saved {
  Buf S, vn, w, T, kk;  // [(N+1), K, V], [T, V], [T, K], [N, C, C], [N, C, C]
};

struct FwdWork {
  Buf kk, A, T, kb, vb, w, u, ob, P;
  FwdWork(int64_t C, int64_t K, int64_t V)
      : kk(C * C), A(C * C), T(C * C), kb(C * K), vb(C * V), w(C * K), u(C * V), ob(C * V), P(C * C) {}
};

// Chunk n of one head; S [K, V] enters as the state before the chunk and leaves as the state after
// it. o (head-offset, strided) may be null; `saved` may be null.
void chunk_forward(Head& hd, FwdWork& ws, int64_t n, float* S, float* o, Saved* saved) {
  const int64_t C = hd.C, K = hd.d.K, V = hd.d.V, N = hd.chunks();
  {
    const int64_t c = hd.gather(n), t0 = n * C;
    float *kk = saved ? &saved->kk[n * C * C] : ws.kk.data(), *T = saved ? &saved->T[n * C * C] : ws.T.data();
    float *w = saved ? &saved->w[t0 * K] : ws.w.data(), *vn = saved ? &saved->vn[t0 * V] : ws.u.data();
    if (saved) std::memcpy(&saved->S[n * K * V], S, sizeof(float) * K * V);
    wy_inverse(hd, c, kk, ws.A.data(), T);
    for (int64_t i = 0; i < c; ++i) {
      const float be = hd.bc[i] * hd.eg[i];
      for (int64_t x = 0; x < K; ++x) ws.kb[i * K + x] = be * hd.kc[i * K + x];
      for (int64_t x = 0; x < V; ++x) ws.vb[i * V + x] = hd.bc[i] * hd.vc[i * V + x];
    }
    small_gemm(false, false, c, K, c, 1.0f, T, C, ws.kb.data(), K, 0.0f, w, K);
    small_gemm(false, false, c, V, c, 1.0f, T, C, ws.vb.data(), V, 0.0f, vn, V);
    small_gemm(false, false, c, V, K, -1.0f, w, K, S, V, 1.0f, vn, V);  // V_new = U - W S
    if (o) {
      small_gemm(false, false, c, V, K, 1.0f, hd.qc.data(), K, S, V, 0.0f, ws.ob.data(), V);
      for (int64_t i = 0; i < c; ++i) {
        const float e = hd.scale * hd.eg[i];
        for (int64_t x = 0; x < V; ++x) ws.ob[i * V + x] *= e;
      }
      intra_scores(hd, c, ws.P.data());
      small_gemm(false, false, c, V, c, 1.0f, ws.P.data(), C, vn, V, 1.0f, ws.ob.data(), V);
      for (int64_t i = 0; i < c; ++i)
        std::memcpy(o + (t0 + i) * hd.d.H * V, &ws.ob[i * V], sizeof(float) * V);
    }
    // S' = e^{G_c} S + (diag(e^{G_c - G}) K)^T V_new
    const float el = hd.eg[c - 1];
    for (int64_t x = 0; x < K * V; ++x) S[x] *= el;
    for (int64_t i = 0; i < c; ++i)
      for (int64_t x = 0; x < K; ++x) ws.kb[i * K + x] = hd.el[i] * hd.kc[i * K + x];
    small_gemm(true, false, K, V, c, 1.0f, ws.kb.data(), K, vn, V, 1.0f, S, V);
  }
  if (saved && n == N - 1) std::memcpy(&saved->S[N * K * V], S, sizeof(float) * K * V);
}

// Heads a thread walks together, chunk by chunk: neighbouring heads of a token row share cache lines
// and pages, so chunks outer, heads inner. Bounded: the backward keeps Saved per head of a group.
constexpr int64_t kHeadGroup = 4;

int64_t head_index(const GatedDeltaRuleDims& d, int64_t bh) { return (bh / d.H) * d.T * d.H + bh % d.H; }

}  // namespace

void gated_delta_rule_chunk_fwd(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d, const float* q,
                                const float* k, const float* v, const float* beta, const float* g, const float* h0,
                                float* o, float* ht) {
  const int64_t KV = d.K * d.V;
  parallel_for_items(d.B * d.H, [&](int64_t lo, int64_t hi) {
    FwdWork ws(p.chunk, d.K, d.V);
    for (int64_t g0 = lo; g0 < hi; g0 += kHeadGroup) {
      const int64_t g1 = std::min(hi, g0 + kHeadGroup);
      std::vector<Head> heads;
      heads.reserve(kHeadGroup);
      for (int64_t bh = g0; bh < g1; ++bh) {
        heads.emplace_back(p, d, q, k, v, beta, g, bh);
        for (int64_t x = 0; x < KV; ++x) ht[bh * KV + x] = h0 ? h0[bh * KV + x] : 0.0f;
      }
      for (int64_t n = 0; n < (d.T + p.chunk - 1) / p.chunk; ++n)
        for (int64_t bh = g0; bh < g1; ++bh)
          chunk_forward(heads[bh - g0], ws, n, ht + bh * KV, o + head_index(d, bh) * d.V, nullptr);
    }
  });
}

namespace {

struct BwdWork {
  Buf dO, P, E, dq, dk, dvn, dw, X, Y, dT, dA, tmp, kb, vb, dG, db;
  BwdWork(int64_t C, int64_t K, int64_t V)
      : dO(C * V), P(C * C), E(C * C), dq(C * K), dk(C * K), dvn(C * V), dw(C * K), X(C * K), Y(C * V),
        dT(C * C), dA(C * C), tmp(C * K), kb(C * K), vb(C * V), dG(C), db(C) {}
};

struct HeadGradsF {
  float *dq, *dk, *dv, *dbeta, *dg;  // head-offset, strided like the inputs; dg may be null
};

// Chunk n of the reverse pass. dS [K, V] enters as the gradient of the state leaving the chunk and
// leaves as that of the state entering it. Derivation: README.md "Chunk backward".
void chunk_backward(Head& hd, const Saved& sv, BwdWork& ws, int64_t n, const float* d_o, float* dS,
                    const HeadGradsF& gr) {
  const int64_t C = hd.C, K = hd.d.K, V = hd.d.V, HK = hd.d.H * K, HV = hd.d.H * V;
  const int64_t c = hd.gather(n), t0 = n * C;
  const float *S = &sv.S[n * K * V], *vn = &sv.vn[t0 * V], *w = &sv.w[t0 * K];
  const float *T = &sv.T[n * C * C], *kk = &sv.kk[n * C * C];
  const float *qc = hd.qc.data(), *kc = hd.kc.data(), *vc = hd.vc.data(), *bc = hd.bc.data();
  const float el = hd.eg[c - 1], *gam = hd.gam.data();
  float *dq = ws.dq.data(), *dk = ws.dk.data(), *dvn = ws.dvn.data(), *E = ws.E.data(), *P = ws.P.data();
  float* dG = ws.dG.data();
  for (int64_t i = 0; i < c; ++i) std::memcpy(&ws.dO[i * V], d_o + (t0 + i) * HV, sizeof(float) * V);
  std::fill(dG, dG + c, 0.0f);

  // Intra-chunk output O += P V_new: E = dO V_new^T; dP o P feeds the gate, dP o Gamma the scores.
  intra_scores(hd, c, P);
  small_gemm(false, true, c, c, V, 1.0f, ws.dO.data(), V, vn, V, 0.0f, E, C);
  for (int64_t i = 0; i < c; ++i)
    for (int64_t j = 0; j < c; ++j) {
      float& e = E[i * C + j];
      if (j > i) {
        e = 0.0f;
        continue;
      }
      // The diagonal's gate terms cancel exactly (G_i - G_i); adding them would leave f32
      // rounding of O(1) terms where the true gradient is ~0 (strong decays).
      if (j < i) {
        const float z = e * P[i * C + j];
        dG[i] += z;
        dG[j] -= z;
      }
      e *= hd.scale * gam[i * C + j];
    }
  // dQ = scale diag(e^G) dO S^T + E K
  small_gemm(false, true, c, K, V, 1.0f, ws.dO.data(), V, S, V, 0.0f, dq, K);
  for (int64_t i = 0; i < c; ++i) {
    const float e = hd.scale * hd.eg[i];
    float acc = 0.0f;
    for (int64_t x = 0; x < K; ++x) {
      dq[i * K + x] *= e;
      acc += dq[i * K + x] * qc[i * K + x];
    }
    dG[i] += acc;
  }
  small_gemm(false, false, c, K, c, 1.0f, E, C, kc, K, 1.0f, dq, K);
  // dK = E^T Q + diag(e^{G_c - G}) V_new dS^T;  kd = diag(e^{G_c - G}) K into kb.
  small_gemm(false, true, c, K, V, 1.0f, vn, V, dS, V, 0.0f, dk, K);
  for (int64_t i = 0; i < c; ++i) {
    const float ed = hd.el[i];
    float acc = 0.0f;
    for (int64_t x = 0; x < K; ++x) {
      dk[i * K + x] *= ed;
      acc += dk[i * K + x] * kc[i * K + x];
      ws.kb[i * K + x] = ed * kc[i * K + x];
    }
    if (i < c - 1) {  // the last row's terms cancel exactly (see the diagonal above)
      dG[i] -= acc;
      dG[c - 1] += acc;
    }
  }
  small_gemm(true, false, c, K, c, 1.0f, E, C, qc, K, 1.0f, dk, K);
  float sds = 0.0f;
  for (int64_t x = 0; x < K * V; ++x) sds += S[x] * dS[x];
  dG[c - 1] += el * sds;
  // dV_new = P^T dO + kd dS
  small_gemm(false, false, c, V, K, 1.0f, ws.kb.data(), K, dS, V, 0.0f, dvn, V);
  small_gemm(true, false, c, V, c, 1.0f, P, C, ws.dO.data(), V, 1.0f, dvn, V);
  // dS_enter = e^{G_c} dS + scale (diag(e^G) Q)^T dO - W^T dV_new;  qe into kb.
  for (int64_t x = 0; x < K * V; ++x) dS[x] *= el;
  for (int64_t i = 0; i < c; ++i) {
    const float e = hd.scale * hd.eg[i];
    for (int64_t x = 0; x < K; ++x) ws.kb[i * K + x] = e * qc[i * K + x];
  }
  small_gemm(true, false, K, V, c, 1.0f, ws.kb.data(), K, ws.dO.data(), V, 1.0f, dS, V);
  small_gemm(true, false, K, V, c, -1.0f, w, K, dvn, V, 1.0f, dS, V);

  // WY backward: V_new = U - W S, W = T Kb, U = T Vb.
  small_gemm(false, true, c, K, V, -1.0f, dvn, V, S, V, 0.0f, ws.dw.data(), K);
  small_gemm(true, false, c, K, c, 1.0f, T, C, ws.dw.data(), K, 0.0f, ws.X.data(), K);
  small_gemm(true, false, c, V, c, 1.0f, T, C, dvn, V, 0.0f, ws.Y.data(), V);
  float* db = ws.db.data();
  for (int64_t i = 0; i < c; ++i) {
    const float e = hd.eg[i], be = bc[i] * e;
    float xk = 0.0f, yv = 0.0f;
    for (int64_t x = 0; x < K; ++x) {
      xk += ws.X[i * K + x] * kc[i * K + x];
      dk[i * K + x] += be * ws.X[i * K + x];
      ws.kb[i * K + x] = be * kc[i * K + x];
    }
    for (int64_t x = 0; x < V; ++x) {
      yv += ws.Y[i * V + x] * vc[i * V + x];
      ws.vb[i * V + x] = bc[i] * vc[i * V + x];
      gr.dv[(t0 + i) * HV + x] = bc[i] * ws.Y[i * V + x];
    }
    db[i] = e * xk + yv;
    dG[i] += be * xk;
  }
  // Through T = (I + A)^-1: dT = dW Kb^T + dU Vb^T, dA = -T^T dT T^T (strictly lower part).
  small_gemm(false, true, c, c, K, 1.0f, ws.dw.data(), K, ws.kb.data(), K, 0.0f, ws.dT.data(), C);
  small_gemm(false, true, c, c, V, 1.0f, dvn, V, ws.vb.data(), V, 1.0f, ws.dT.data(), C);
  small_gemm(true, false, c, c, c, 1.0f, T, C, ws.dT.data(), C, 0.0f, ws.E.data(), C);
  small_gemm(false, true, c, c, c, -1.0f, ws.E.data(), C, T, C, 0.0f, ws.dA.data(), C);
  // A_ij = b_i kk_ij Gamma_ij (i > j); dM = dA o Gamma into dA.
  for (int64_t i = 0; i < c; ++i)
    for (int64_t j = 0; j < c; ++j) {
      float& da = ws.dA[i * C + j];
      if (j >= i) {
        da = 0.0f;
        continue;
      }
      const float z = da * bc[i] * kk[i * C + j] * gam[i * C + j];
      dG[i] += z;
      dG[j] -= z;
      da *= gam[i * C + j];
      db[i] += da * kk[i * C + j];
    }
  // dk_i += b_i sum_j dM_ij k_j;  dk_j += sum_i dM_ij b_i k_i.
  small_gemm(false, false, c, K, c, 1.0f, ws.dA.data(), C, kc, K, 0.0f, ws.tmp.data(), K);
  for (int64_t i = 0; i < c; ++i)
    for (int64_t x = 0; x < K; ++x) {
      dk[i * K + x] += bc[i] * ws.tmp[i * K + x];
      ws.kb[i * K + x] = bc[i] * kc[i * K + x];
    }
  small_gemm(true, false, c, K, c, 1.0f, ws.dA.data(), C, ws.kb.data(), K, 1.0f, dk, K);

  float acc = 0.0f;  // dg = reverse cumsum of dG within the chunk
  for (int64_t i = c - 1; i >= 0; --i) {
    acc += dG[i];
    if (gr.dg) gr.dg[(t0 + i) * hd.d.H] = acc;
    gr.dbeta[(t0 + i) * hd.d.H] = db[i];
    std::memcpy(gr.dq + (t0 + i) * HK, &dq[i * K], sizeof(float) * K);
    std::memcpy(gr.dk + (t0 + i) * HK, &dk[i * K], sizeof(float) * K);
  }
}

}  // namespace

void gated_delta_rule_chunk_bwd(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d, const float* q,
                                const float* k, const float* v, const float* beta, const float* g, const float* h0,
                                const float* d_o, const float* d_ht, const GatedDeltaRuleGradsF& gr) {
  const int64_t KV = d.K * d.V, C = p.chunk;
  parallel_for_items(d.B * d.H, [&](int64_t lo, int64_t hi) {
    FwdWork fw(C, d.K, d.V);
    BwdWork bw(C, d.K, d.V);
    // Kept across calls: a training step's backward reuses the pages instead of faulting in
    // O(T (K + V) + T/C K V) fresh ones per head.
    thread_local std::vector<Saved> saved(kHeadGroup);
    Buf S(kHeadGroup * KV), dS(kHeadGroup * KV);
    const int64_t N = (d.T + C - 1) / C;
    for (int64_t g0 = lo; g0 < hi; g0 += kHeadGroup) {
      const int64_t g1 = std::min(hi, g0 + kHeadGroup);
      std::vector<Head> heads;
      heads.reserve(kHeadGroup);
      for (int64_t bh = g0; bh < g1; ++bh) {
        heads.emplace_back(p, d, q, k, v, beta, g, bh);
        Saved& sv = saved[bh - g0];
        sv.S.resize((N + 1) * KV), sv.vn.resize(d.T * d.V), sv.w.resize(d.T * d.K);
        sv.T.resize(N * C * C), sv.kk.resize(N * C * C);
        for (int64_t x = 0; x < KV; ++x) {
          S[(bh - g0) * KV + x] = h0 ? h0[bh * KV + x] : 0.0f;
          dS[(bh - g0) * KV + x] = d_ht ? d_ht[bh * KV + x] : 0.0f;
        }
      }
      for (int64_t n = 0; n < N; ++n)
        for (int64_t bh = g0; bh < g1; ++bh)
          chunk_forward(heads[bh - g0], fw, n, &S[(bh - g0) * KV], nullptr, &saved[bh - g0]);
      for (int64_t n = N - 1; n >= 0; --n)
        for (int64_t bh = g0; bh < g1; ++bh) {
          const int64_t at = head_index(d, bh);
          HeadGradsF hg{gr.dq + at * d.K, gr.dk + at * d.K, gr.dv + at * d.V, gr.dbeta + at,
                        gr.dg ? gr.dg + at : nullptr};
          chunk_backward(heads[bh - g0], saved[bh - g0], bw, n, d_o + at * d.V, &dS[(bh - g0) * KV], hg);
        }
      if (gr.dh0)
        for (int64_t bh = g0; bh < g1; ++bh)
          std::memcpy(gr.dh0 + bh * KV, &dS[(bh - g0) * KV], sizeof(float) * KV);
    }
  });
}

}  // namespace speedlm::ops
