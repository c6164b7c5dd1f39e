// Chunk form of the gated delta rule (README.md "Chunk form" and "Chunk backward"): per chunk of C
// tokens the WY/UT representation W = T diag(b e^G) K, U = T diag(b) V with T = (I + A)^-1 turns
// C rank-one updates into GEMMs. Each thread owns whole heads and walks groups of them chunk by
// chunk (each head's state is carried); all intra-chunk work are small GEMMs on gathered q, k, v
// tiles, the outputs accumulated in place in their rows, the next chunk's rows prefetched.
// Only non-positive exponents are ever formed (G is the chunk-local cumsum, exp(G_i - G_j), j <= i).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>


#include "core/parallel.h"
#include "core/simd_math.h"
#include "ops/linear/common/prefetch.h"
#include "ops/linear/common/row_copy.h"
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

  // Requests chunk n's rows of a head-offset [T, H, width] tensor (nothing if n is out of range or
  // p is null): at long T they come from memory, H rows apart, and the copies stall on them
  // unless asked for a chunk ahead.
  void prefetch(const float* p, int64_t width, int64_t n, bool for_write = false) const {
    if (p && n >= 0 && n < chunks()) queue_prefetch(p + n * C * d.H * width, rows(n), d.H * width, width, for_write);
  }
  void prefetch_inputs(int64_t n, bool with_q = true) const {
    prefetch(with_q ? q : nullptr, d.K, n), prefetch(k, d.K, n), prefetch(v, d.V, n);
    prefetch(beta, 1, n), prefetch(g, 1, n);
  }

  // Gathers chunk n (q only if with_q: the backward's forward rerun has no output) and its decay
  // factors; returns its length c. G is the inclusive chunk-local cumsum of g; exponents are
  // masked to <= 0 before exp (never exp(-G) alone).
  int64_t gather(int64_t n, bool with_q = true) {
    const int64_t t0 = n * C, c = rows(n), K = d.K, V = d.V, HK = d.H * K, HV = d.H * V;
    if (with_q) copy_rows(qc.data(), K, q + t0 * HK, HK, c, K);
    copy_rows(kc.data(), K, k + t0 * HK, HK, c, K);
    copy_rows(vc.data(), V, v + t0 * HV, HV, c, V);
    float acc = 0.0f;
    for (int64_t t = 0; t < c; ++t) {
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
// (row i of T is e_i - sum_{m<i} A_im T_m). All [C, C], only the leading c x c used. Row m of T
// is 0 past m, so each update runs over whole rows: branch-free, vectorised, four rows m at a
// time (a quarter of the dependent updates of Ti).
void wy_inverse(const Head& hd, int64_t c, float* kk, float* A, float* T) {
  const int64_t C = hd.C, K = hd.d.K;
  small_gemm(false, true, c, c, K, 1.0f, hd.kc.data(), K, hd.kc.data(), K, 0.0f, kk, C);
  const float *__restrict gam = hd.gam.data(), *__restrict kkc = kk;
  for (int64_t i = 0; i < c; ++i) {
    float *__restrict Ai = A + i * C, *__restrict Ti = T + i * C;
    const float b = hd.bc[i];
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) {
      Ai[j] = b * kkc[i * C + j] * gam[i * C + j] * static_cast<float>(j < i);
      Ti[j] = static_cast<float>(j == i);
    }
    int64_t m = 0;
    for (; m + 4 <= i; m += 4) {
      const float a0 = Ai[m], a1 = Ai[m + 1], a2 = Ai[m + 2], a3 = Ai[m + 3];
      const float *__restrict T0 = T + m * C, *__restrict T1 = T0 + C, *__restrict T2 = T1 + C,
                  *__restrict T3 = T2 + C;
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) Ti[j] -= (a0 * T0[j] + a1 * T1[j]) + (a2 * T2[j] + a3 * T3[j]);
    }
    for (; m < i; ++m) {
      const float a = Ai[m];
      const float* __restrict Tm = T + m * C;
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) Ti[j] -= a * Tm[j];
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

// What the backward keeps per head from its forward pass: entering states and the WY factors,
// slices of saved_workspace.
struct Saved {
  float *S, *vn, *w, *T, *kk;  // [(N+1), K, V], [T, V], [T, K], [N, C, C], [N, C, C]
  static int64_t floats(int64_t N, int64_t C, const GatedDeltaRuleDims& d) {
    return (N + 1) * d.K * d.V + d.T * (d.V + d.K) + 2 * N * C * C;
  }
  Saved(float* p, int64_t N, int64_t C, const GatedDeltaRuleDims& d)
      : S(p), vn(S + (N + 1) * d.K * d.V), w(vn + d.T * d.V), T(w + d.T * d.K), kk(T + N * C * C) {}
};

// The calling thread's storage for Saved, at least n floats, kept across calls (contents
// undefined): it is megabytes per head at long T, and a fresh buffer per call would fault its
// pages in each time. Ordinary pages: advising 2 MiB pages (MADV_HUGEPAGE) measured 4% faster at
// T = 4096 but 38% slower at T = 16384 on this machine (docs/BENCHMARKS.md, delta-rule section).
float* saved_workspace(int64_t n) {
  constexpr size_t kAlign = 64;
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<float, Free> buf;
  thread_local size_t bytes = 0;
  const size_t want = (static_cast<size_t>(n) * sizeof(float) + kAlign - 1) / kAlign * kAlign;
  if (want > bytes) {
    auto* p = static_cast<float*>(std::aligned_alloc(kAlign, want));
    if (!p) throw std::bad_alloc();
    buf.reset(p);
    bytes = want;
  }
  return buf.get();
}

struct FwdWork {
  Buf kk, A, T, kb, vb, w, u, P;
  FwdWork(int64_t C, int64_t K, int64_t V)
      : kk(C * C), A(C * C), T(C * C), kb(C * K), vb(C * V), w(C * K), u(C * V), P(C * C) {}
};

// Chunk n of one head; S [K, V] enters as the state before the chunk and leaves as the state after
// it. o (head-offset, strided) may be null; `saved` may be null.
// With `saved`, S is saved->S[n] and the state after the chunk is written to saved->S[n + 1].
void chunk_forward(Head& hd, FwdWork& ws, int64_t n, float* S, float* o, Saved* saved) {
  const int64_t C = hd.C, K = hd.d.K, V = hd.d.V;
  {
    hd.prefetch_inputs(n + 1, o != nullptr);
    hd.prefetch(o, V, n + 1, true);
    if (saved && n + 1 < hd.chunks()) {  // the next chunk's saved slots, for writing
      queue_prefetch(S + 2 * K * V, 1, 0, K * V, true);
      queue_prefetch(&saved->vn[(n + 1) * C * V], 1, 0, C * V, true);
      queue_prefetch(&saved->w[(n + 1) * C * K], 1, 0, C * K, true);
      queue_prefetch(&saved->T[(n + 1) * C * C], 1, 0, C * C, true);
      queue_prefetch(&saved->kk[(n + 1) * C * C], 1, 0, C * C, true);
    }
    const int64_t c = hd.gather(n, o != nullptr), t0 = n * C;
    float *kk = saved ? &saved->kk[n * C * C] : ws.kk.data(), *T = saved ? &saved->T[n * C * C] : ws.T.data();
    float *w = saved ? &saved->w[t0 * K] : ws.w.data(), *vn = saved ? &saved->vn[t0 * V] : ws.u.data();
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
      float* oc = o + t0 * hd.d.H * V;  // the output rows, H V apart, written in place
      const int64_t ldo = hd.d.H * V;
      small_gemm(false, false, c, V, K, 1.0f, hd.qc.data(), K, S, V, 0.0f, oc, ldo);
      for (int64_t i = 0; i < c; ++i) {
        const float e = hd.scale * hd.eg[i];
#pragma omp simd
        for (int64_t x = 0; x < V; ++x) oc[i * ldo + x] *= e;
      }
      intra_scores(hd, c, ws.P.data());
      small_gemm(false, false, c, V, c, 1.0f, ws.P.data(), C, vn, V, 1.0f, oc, ldo);
    }
    // S' = e^{G_c} S + (diag(e^{G_c - G}) K)^T V_new
    // In place (beta = e^{G_c}), or into the next saved slot.
    float el = hd.eg[c - 1], *Sn = S;
    if (saved) {
      float *__restrict to = S + K * V;
      const float* __restrict from = S;
#pragma omp simd
      for (int64_t x = 0; x < K * V; ++x) to[x] = el * from[x];
      Sn = to, el = 1.0f;
    }
    for (int64_t i = 0; i < c; ++i)
      for (int64_t x = 0; x < K; ++x) ws.kb[i * K + x] = hd.el[i] * hd.kc[i * K + x];
    small_gemm(true, false, K, V, c, 1.0f, ws.kb.data(), K, vn, V, el, Sn, V);
  }
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
  Buf ov, z, qw, P, E, X, Y, dT, dA, tmp, kb, vb, dG, col, db;
  BwdWork(int64_t C, int64_t K, int64_t V)
      : ov(2 * C * V), z(2 * C * K), qw(2 * C * K), P(C * C), E(C * C), X(C * K), Y(C * V), dT(C * C),
        dA(C * C), tmp(C * K), kb(C * K), vb(C * V), dG(C), col(C), db(C) {}
};

struct HeadGradsF {
  float *dq, *dk, *dv, *dbeta, *dg;  // head-offset, strided like the inputs; dg may be null
};

// dG_j -= col_j: the column sums of a strictly lower gate-term product Z, gathered apart so that
// its rows vectorise (the row sums dG_i += sum_j Z_ij are taken in place).
void add_col_sums(int64_t c, const float* __restrict col, float* __restrict dG) {
  for (int64_t j = 0; j < c; ++j) dG[j] -= col[j];
}

// Chunk n of the reverse pass. dS [K, V] enters as the gradient of the state leaving the chunk and
// leaves as that of the state entering it. Derivation: README.md "Chunk backward".
void chunk_backward(Head& hd, const Saved& sv, BwdWork& ws, int64_t n, const float* d_o, float* dS,
                    const HeadGradsF& gr) {
  const int64_t C = hd.C, K = hd.d.K, V = hd.d.V, HK = hd.d.H * K, HV = hd.d.H * V;
  hd.prefetch_inputs(n - 1);
  hd.prefetch(d_o, V, n - 1);
  hd.prefetch(gr.dq, K, n - 1, true), hd.prefetch(gr.dk, K, n - 1, true), hd.prefetch(gr.dv, V, n - 1, true);
  if (n > 0) {  // chunk n - 1's saved factors, contiguous
    queue_prefetch(&sv.S[(n - 1) * K * V], 1, 0, K * V);
    queue_prefetch(&sv.vn[(n - 1) * C * V], 1, 0, C * V), queue_prefetch(&sv.w[(n - 1) * C * K], 1, 0, C * K);
    queue_prefetch(&sv.T[(n - 1) * C * C], 1, 0, C * C), queue_prefetch(&sv.kk[(n - 1) * C * C], 1, 0, C * C);
  }
  const int64_t c = hd.gather(n), t0 = n * C;
  const float *S = &sv.S[n * K * V], *vn = &sv.vn[t0 * V], *w = &sv.w[t0 * K];
  const float *T = &sv.T[n * C * C], *kk = &sv.kk[n * C * C];
  const float *__restrict qc = hd.qc.data(), *__restrict kc = hd.kc.data(), *__restrict vc = hd.vc.data();
  const float *__restrict bc = hd.bc.data(), *__restrict eg = hd.eg.data(), *__restrict eld = hd.el.data();
  const float el = eg[c - 1], scale = hd.scale, *gam = hd.gam.data();
  // ov: dO [c, V] then dV_new [c, V] right below it; z: their products with S^T, [2c, K].
  float *__restrict dO = ws.ov.data(), *__restrict dvn = dO + c * V, *__restrict zq = ws.z.data();
  const float* __restrict zw = zq + c * K;  // = -dW
  // dq, dk accumulate in place in the outputs' rows, HK apart.
  float *__restrict dq = gr.dq + t0 * HK, *__restrict dk = gr.dk + t0 * HK, *__restrict kb = ws.kb.data();
  float *__restrict vb = ws.vb.data(), *__restrict X = ws.X.data(), *__restrict Y = ws.Y.data();
  float *E = ws.E.data(), *P = ws.P.data(), *__restrict dG = ws.dG.data(), *__restrict db = ws.db.data();
  copy_rows(dO, V, d_o + t0 * HV, HV, c, V);
  std::fill(dG, dG + c, 0.0f);
  std::fill(db, db + c, 0.0f);

  // Intra-chunk output O += P V_new: E = dO V_new^T; dP o P feeds the gate, dP o Gamma the scores.
  // The diagonal's gate terms cancel exactly (G_i - G_i); adding them would leave f32 rounding of
  // O(1) terms where the true gradient is ~0 (strong decays): gate_terms takes j < i only.
  intra_scores(hd, c, P);
  small_gemm(false, true, c, c, V, 1.0f, dO, V, vn, V, 0.0f, E, C);
  float* __restrict col = ws.col.data();
  std::fill(col, col + c, 0.0f);
  for (int64_t i = 0; i < c; ++i) {
    float *__restrict Ei = E + i * C, row = 0.0f;
    const float *__restrict Pi = P + i * C, *__restrict gi = gam + i * C;
#pragma omp simd reduction(+ : row)
    for (int64_t j = 0; j < c; ++j) {
      const float z = Ei[j] * Pi[j] * static_cast<float>(j < i);
      row += z;
      col[j] += z;
      Ei[j] *= scale * gi[j];  // Gamma is 0 above the diagonal
    }
    dG[i] += row;
  }
  add_col_sums(c, col, dG);
  // dV_new = P^T dO + kd dS with kd = diag(e^{G_c - G}) K (into kb).
  for (int64_t i = 0; i < c; ++i)
#pragma omp simd
    for (int64_t x = 0; x < K; ++x) kb[i * K + x] = eld[i] * kc[i * K + x];
  small_gemm(false, false, c, V, K, 1.0f, kb, K, dS, V, 0.0f, dvn, V);
  small_gemm(true, false, c, V, c, 1.0f, P, C, dO, V, 1.0f, dvn, V);
  // [dO; dV_new] S^T in one product: dQ's state part and -dW.
  small_gemm(false, true, 2 * c, K, V, 1.0f, dO, V, S, V, 0.0f, zq, K);
  // dQ = scale diag(e^G) dO S^T + E K
  for (int64_t i = 0; i < c; ++i) {
    const float e = scale * eg[i];
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t x = 0; x < K; ++x) {
      dq[i * HK + x] = e * zq[i * K + x];
      acc += dq[i * HK + x] * qc[i * K + x];
    }
    dG[i] += acc;
  }
  small_gemm(false, false, c, K, c, 1.0f, E, C, kc, K, 1.0f, dq, HK);
  // dK = E^T Q + diag(e^{G_c - G}) V_new dS^T
  small_gemm(false, true, c, K, V, 1.0f, vn, V, dS, V, 0.0f, dk, HK);
  for (int64_t i = 0; i < c - 1; ++i) {  // the last row's terms cancel exactly (see the diagonal above)
    const float ed = eld[i];
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t x = 0; x < K; ++x) {
      dk[i * HK + x] *= ed;
      acc += dk[i * HK + x] * kc[i * K + x];
    }
    dG[i] -= acc;
    dG[c - 1] += acc;
  }
  small_gemm(true, false, c, K, c, 1.0f, E, C, qc, K, 1.0f, dk, HK);
  float sds = 0.0f;
  {
    const float *__restrict Sr = S, *__restrict dSr = dS;
#pragma omp simd reduction(+ : sds)
    for (int64_t x = 0; x < K * V; ++x) sds += Sr[x] * dSr[x];
  }
  dG[c - 1] += el * sds;
  // dS_enter = e^{G_c} dS + [scale diag(e^G) Q; -W]^T [dO; dV_new], one product of inner 2c.
  float* __restrict qw = ws.qw.data();
  for (int64_t i = 0; i < c; ++i) {
    const float e = scale * eg[i];
#pragma omp simd
    for (int64_t x = 0; x < K; ++x) {
      qw[i * K + x] = e * qc[i * K + x];
      qw[(c + i) * K + x] = -w[i * K + x];
    }
  }
  small_gemm(true, false, K, V, 2 * c, 1.0f, qw, K, dO, V, el, dS, V);

  // WY backward: V_new = U - W S, W = T Kb, U = T Vb; dW = -zw.
  small_gemm(true, false, c, K, c, -1.0f, T, C, zw, K, 0.0f, X, K);
  small_gemm(true, false, c, V, c, 1.0f, T, C, dvn, V, 0.0f, Y, V);
  for (int64_t i = 0; i < c; ++i) {
    const float e = eg[i], b = bc[i], be = b * e;
    float xk = 0.0f, yv = 0.0f;
#pragma omp simd reduction(+ : xk)
    for (int64_t x = 0; x < K; ++x) {
      xk += X[i * K + x] * kc[i * K + x];
      dk[i * HK + x] += be * X[i * K + x];
      kb[i * K + x] = be * kc[i * K + x];
    }
    float* __restrict dvr = gr.dv + (t0 + i) * HV;
#pragma omp simd reduction(+ : yv)
    for (int64_t x = 0; x < V; ++x) {
      yv += Y[i * V + x] * vc[i * V + x];
      vb[i * V + x] = b * vc[i * V + x];
      dvr[x] = b * Y[i * V + x];
    }
    db[i] += e * xk + yv;
    dG[i] += be * xk;
  }
  // Through T = (I + A)^-1: dT = dW Kb^T + dU Vb^T, dA = -T^T dT T^T (strictly lower part).
  small_gemm(false, true, c, c, K, -1.0f, zw, K, kb, K, 0.0f, ws.dT.data(), C);
  small_gemm(false, true, c, c, V, 1.0f, dvn, V, vb, V, 1.0f, ws.dT.data(), C);
  small_gemm(true, false, c, c, c, 1.0f, T, C, ws.dT.data(), C, 0.0f, E, C);
  small_gemm(false, true, c, c, c, -1.0f, E, C, T, C, 0.0f, ws.dA.data(), C);
  // A_ij = b_i kk_ij Gamma_ij (i > j): gate terms of dA o A; dM = dA o Gamma (strict) into dA.
  std::fill(col, col + c, 0.0f);
  for (int64_t i = 0; i < c; ++i) {
    float *__restrict dAi = &ws.dA[i * C], row = 0.0f, rb = 0.0f;
    const float *__restrict kki = kk + i * C, *__restrict gi = gam + i * C;
    const float b = bc[i];
#pragma omp simd reduction(+ : row, rb)
    for (int64_t j = 0; j < c; ++j) {
      const float dm = dAi[j] * gi[j] * static_cast<float>(j < i), z = b * dm * kki[j];
      row += z;
      col[j] += z;
      rb += dm * kki[j];
      dAi[j] = dm;
    }
    dG[i] += row;
    db[i] += rb;
  }
  add_col_sums(c, col, dG);
  // dk_i += b_i sum_j dM_ij k_j;  dk_j += sum_i dM_ij b_i k_i.
  small_gemm(false, false, c, K, c, 1.0f, ws.dA.data(), C, kc, K, 0.0f, ws.tmp.data(), K);
  for (int64_t i = 0; i < c; ++i) {
    const float* __restrict tmp = &ws.tmp[i * K];
#pragma omp simd
    for (int64_t x = 0; x < K; ++x) {
      dk[i * HK + x] += bc[i] * tmp[x];
      kb[i * K + x] = bc[i] * kc[i * K + x];
    }
  }
  small_gemm(true, false, c, K, c, 1.0f, ws.dA.data(), C, kb, K, 1.0f, dk, HK);

  float acc = 0.0f;  // dg = reverse cumsum of dG within the chunk
  for (int64_t i = c - 1; i >= 0; --i) {
    acc += dG[i];
    if (gr.dg) gr.dg[(t0 + i) * hd.d.H] = acc;
    gr.dbeta[(t0 + i) * hd.d.H] = db[i];
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
    Buf dS(kHeadGroup * KV);
    const int64_t N = (d.T + C - 1) / C, per = Saved::floats(N, C, d);
    float* store = saved_workspace(kHeadGroup * per);
    std::vector<Saved> saved;
    for (int64_t i = 0; i < kHeadGroup; ++i) saved.emplace_back(store + i * per, N, C, d);
    for (int64_t g0 = lo; g0 < hi; g0 += kHeadGroup) {
      const int64_t g1 = std::min(hi, g0 + kHeadGroup);
      std::vector<Head> heads;
      heads.reserve(kHeadGroup);
      for (int64_t bh = g0; bh < g1; ++bh) {
        heads.emplace_back(p, d, q, k, v, beta, g, bh);
        Saved& sv = saved[bh - g0];
        for (int64_t x = 0; x < KV; ++x) {
          sv.S[x] = h0 ? h0[bh * KV + x] : 0.0f;
          dS[(bh - g0) * KV + x] = d_ht ? d_ht[bh * KV + x] : 0.0f;
        }
      }
      for (int64_t n = 0; n < N; ++n)
        for (int64_t bh = g0; bh < g1; ++bh)
          chunk_forward(heads[bh - g0], fw, n, &saved[bh - g0].S[n * KV], nullptr, &saved[bh - g0]);
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
