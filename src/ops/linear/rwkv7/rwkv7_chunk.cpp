// Chunk form of RWKV-7 WKV (README.md "Chunk form"). Per chunk of c tokens, with G the inclusive
// and Gm the exclusive chunk-local cumsum of w (per key channel):
//   gated scores  Aqk = (q, k), Aqb = (q, b) over s <= t, Aak = (a, k), Aab = (a, b) over s < t,
//                 (x, y)_ts = sum_d x_td y_sd exp(Gx_td - G_sd)   (Gx = G for q, Gm for a)
//   SA = (I - Aab)^-1 (Aak V + (a e^Gm) S0)       the rows a_t^T S_{t-1}
//   O  = scale ((q e^G) S0 + Aqb SA + Aqk V)
//   S' = e^{G_c} S0 + (b e^{G_c - G})^T SA + (k e^{G_c - G})^T V
// The scores are GEMMs of (x e^Gx) and (y e^-G) when the chunk's decay stays above e^-80 (always
// for RWKV-7's bounded w and C <= 128), else they are summed element-wise with non-positive
// exponents only. Each thread owns whole heads and walks groups of them chunk by chunk.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "core/parallel.h"
#include "core/simd_math.h"
#include "ops/linear/common/prefetch.h"
#include "ops/linear/common/small_gemm.h"
#include "ops/linear/rwkv7/rwkv7.h"

namespace speedlm::ops {

namespace {

using Buf = std::vector<float>;
constexpr float kSafeDecay = 80.0f;  // factorised scores need e^{-G} <= e^80

struct Head {
  const Rwkv7Dims& d;
  int64_t C;
  float scale;
  const float *q, *w, *k, *v, *a, *b;  // offset to (b, t = 0, h)
  Buf qc, kc, vc, ac, bc, G, Gm;       // [C, K] ([C, V] for vc)
  Buf eg, egm, el, qg, ag, kd, bd;     // e^G, e^Gm, e^{Gc - G}, q e^G, a e^Gm, k e^{Gc - G}, b e^{Gc - G}
  Buf einv, kinv, binv;                // e^-G, k e^-G, b e^-G (factorised scores only)
  Buf ec, ones;                        // e^{Gc}, 1 [K]
  bool factorised = true;

  Head(const Rwkv7Params& p, const Rwkv7Dims& dd, const float* q_, const float* w_, const float* k_, const float* v_,
       const float* a_, const float* b_, int64_t bh)
      : d(dd), C(p.chunk), scale(p.scale) {
    const int64_t s = (bh / d.H) * d.T * d.H + bh % d.H;
    q = q_ + s * d.K, w = w_ + s * d.K, k = k_ + s * d.K, a = a_ + s * d.K, b = b_ + s * d.K, v = v_ + s * d.V;
    for (Buf* x : {&qc, &kc, &ac, &bc, &G, &Gm, &eg, &egm, &el, &qg, &ag, &kd, &bd, &einv, &kinv, &binv})
      x->resize(C * d.K);
    vc.resize(C * d.V);
    ec.resize(d.K);
    ones.assign(d.K, 1.0f);
  }

  // Rows [0, c) of the decay factors and scaled inputs from G. The path is a template argument:
  // GCC leaves a simd loop scalar when one arm of a ternary calls exp_f32. Raw restrict pointers,
  // as through the Buf members GCC assumes aliasing.
  template <bool kFactorised>
  void decay_factors(int64_t c) {
    const int64_t K = d.K;
    const float *__restrict Gp = G.data(), *__restrict Gc = Gp + (c - 1) * K, *__restrict ecp = ec.data();
    const float *__restrict qp = qc.data(), *__restrict kp = kc.data(), *__restrict ap = ac.data();
    const float* __restrict bp = bc.data();
    float *__restrict egp = eg.data(), *__restrict egmp = egm.data(), *__restrict elp = el.data();
    float *__restrict qgp = qg.data(), *__restrict agp = ag.data(), *__restrict kdp = kd.data();
    float *__restrict bdp = bd.data(), *__restrict einvp = einv.data(), *__restrict kinvp = kinv.data();
    float* __restrict binvp = binv.data();
    for (int64_t t = 0; t < c; ++t) {
      const int64_t r = t * K;
      const float* __restrict prev = t > 0 ? egp + r - K : ones.data();
#pragma omp simd
      for (int64_t x = 0; x < K; ++x) {
        const float g = Gp[r + x], gl = Gc[x] - g;  // ternaries: std::min's temporaries block simd
        const float e = exp_f32(g < 0.0f ? g : 0.0f), em = prev[x];
        const float inv = kFactorised ? 1.0f / e : 0.0f;
        const float l = kFactorised ? ecp[x] * inv : exp_f32(gl < 0.0f ? gl : 0.0f);
        egp[r + x] = e, egmp[r + x] = em, elp[r + x] = l, einvp[r + x] = inv;
        qgp[r + x] = qp[r + x] * e;
        agp[r + x] = ap[r + x] * em;
        kdp[r + x] = kp[r + x] * l;
        bdp[r + x] = bp[r + x] * l;
        kinvp[r + x] = kp[r + x] * inv;
        binvp[r + x] = bp[r + x] * inv;
      }
    }
  }

  // Requests the input rows of chunk n (if any) ahead of its gather.
  void prefetch(int64_t n) const {
    const int64_t t0 = n * C;
    if (n < 0 || t0 >= d.T) return;
    const int64_t c = std::min(C, d.T - t0), HK = d.H * d.K;
    for (const float* x : {q, w, k, a, b}) queue_prefetch(x + t0 * HK, c, HK, d.K);
    queue_prefetch(v + t0 * d.H * d.V, c, d.H * d.V, d.V);
  }

  // Gathers chunk n and its decay factors; returns its length c.
  int64_t gather(int64_t n) {
    const int64_t t0 = n * C, c = std::min(C, d.T - t0), K = d.K, V = d.V, HK = d.H * K, HV = d.H * V;
    float* __restrict Gp = G.data();
    float* __restrict Gmp = Gm.data();
    for (int64_t t = 0; t < c; ++t) {
      const int64_t o = (t0 + t) * HK;
      std::memcpy(&qc[t * K], q + o, sizeof(float) * K);
      std::memcpy(&kc[t * K], k + o, sizeof(float) * K);
      std::memcpy(&ac[t * K], a + o, sizeof(float) * K);
      std::memcpy(&bc[t * K], b + o, sizeof(float) * K);
      std::memcpy(&vc[t * V], v + (t0 + t) * HV, sizeof(float) * V);
      const float* __restrict wt = w + o;
      float *__restrict Gt = Gp + t * K, *__restrict Gmt = Gmp + t * K;
      if (t == 0) {
#pragma omp simd
        for (int64_t x = 0; x < K; ++x) Gmt[x] = 0.0f, Gt[x] = wt[x];
      } else {
#pragma omp simd
        for (int64_t x = 0; x < K; ++x) Gmt[x] = Gt[x - K], Gt[x] = Gt[x - K] + wt[x];
      }
    }
    const float* Gc = &G[(c - 1) * K];
    factorised = true;
    for (int64_t x = 0; x < K; ++x) {
      ec[x] = exp_f32(std::min(Gc[x], 0.0f));
      factorised = factorised && Gc[x] >= -kSafeDecay;
    }
    // One exp per element: e^{Gm_t} = e^{G_{t-1}}; factorised, e^{-G} = 1 / e^G (>= e^-80, so
    // no overflow) and e^{Gc - G} = e^{Gc} e^{-G}.
    if (factorised) decay_factors<true>(c);
    else decay_factors<false>(c);
    return c;
  }
};

// Mask of the scores: keep s <= t - lag.
void mask(float* X, int64_t c, int64_t C, int64_t lag) {
  for (int64_t t = 0; t < c; ++t)
    for (int64_t s = std::max<int64_t>(0, t - lag + 1); s < c; ++s) X[t * C + s] = 0.0f;
}

// The score diagonal whose exponent is identically 0: s = t for (q, .) (lag 0), s = t - 1 for
// (a, .) (lag 1, Gm_t = G_{t-1}). The factorised path computes it as a plain dot product: through
// e^G and e^-G its gate terms would cancel only up to f32 rounding.
void lag_diag(int64_t c, int64_t C, int64_t K, const float* x, const float* y, int64_t lag, float* X) {
  for (int64_t t = lag; t < c; ++t) {
    float acc = 0.0f;
    for (int64_t i = 0; i < K; ++i) acc += x[t * K + i] * y[(t - lag) * K + i];
    X[t * C + t - lag] = acc;
  }
}

// X_ts = sum_d x_td y_sd exp(Gx_td - G_sd), element-wise (any decay).
void direct_scores(const Head& hd, int64_t c, const float* x, const float* Gx, const float* y, bool inclusive,
                   float* X) {
  const int64_t K = hd.d.K, C = hd.C;
  const float* G = hd.G.data();
  for (int64_t t = 0; t < c; ++t)
    for (int64_t s = 0; s < c; ++s) {
      if (s > t || (s == t && !inclusive)) {
        X[t * C + s] = 0.0f;
        continue;
      }
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < K; ++i)
        acc += x[t * K + i] * y[s * K + i] * exp_f32(std::min(Gx[t * K + i] - G[s * K + i], 0.0f));
      X[t * C + s] = acc;
    }
}

struct Scores {
  Buf qk, qb, ak, ab;  // [C, C]
  explicit Scores(int64_t C) : qk(C * C), qb(C * C), ak(C * C), ab(C * C) {}
};

void scores(const Head& hd, int64_t c, Scores& sc) {
  const int64_t K = hd.d.K, C = hd.C;
  if (hd.factorised) {
    small_gemm(false, true, c, c, K, 1.0f, hd.qg.data(), K, hd.kinv.data(), K, 0.0f, sc.qk.data(), C);
    small_gemm(false, true, c, c, K, 1.0f, hd.qg.data(), K, hd.binv.data(), K, 0.0f, sc.qb.data(), C);
    small_gemm(false, true, c, c, K, 1.0f, hd.ag.data(), K, hd.kinv.data(), K, 0.0f, sc.ak.data(), C);
    small_gemm(false, true, c, c, K, 1.0f, hd.ag.data(), K, hd.binv.data(), K, 0.0f, sc.ab.data(), C);
    mask(sc.qk.data(), c, C, 1), mask(sc.qb.data(), c, C, 1), mask(sc.ak.data(), c, C, 2), mask(sc.ab.data(), c, C, 2);
    lag_diag(c, C, K, hd.qc.data(), hd.kc.data(), 0, sc.qk.data());
    lag_diag(c, C, K, hd.qc.data(), hd.bc.data(), 0, sc.qb.data());
    lag_diag(c, C, K, hd.ac.data(), hd.kc.data(), 1, sc.ak.data());
    lag_diag(c, C, K, hd.ac.data(), hd.bc.data(), 1, sc.ab.data());
  } else {
    direct_scores(hd, c, hd.qc.data(), hd.G.data(), hd.kc.data(), true, sc.qk.data());
    direct_scores(hd, c, hd.qc.data(), hd.G.data(), hd.bc.data(), true, sc.qb.data());
    direct_scores(hd, c, hd.ac.data(), hd.Gm.data(), hd.kc.data(), false, sc.ak.data());
    direct_scores(hd, c, hd.ac.data(), hd.Gm.data(), hd.bc.data(), false, sc.ab.data());
  }
}

// T = (I - Aab)^-1 by forward substitution: row i is e_i + sum_{m<i} Aab_im T_m.
void unit_lower_inverse(const float* Aab, int64_t c, int64_t C, float* T) {
  for (int64_t i = 0; i < c; ++i) {
    float* Ti = T + i * C;
    for (int64_t j = 0; j < c; ++j) Ti[j] = j == i ? 1.0f : 0.0f;
    for (int64_t m = 0; m < i; ++m) {
      const float x = Aab[i * C + m];
      const float* Tm = T + m * C;
      for (int64_t j = 0; j <= m; ++j) Ti[j] += x * Tm[j];
    }
  }
}

// What the backward keeps per head: entering states, SA rows and the inverses.
struct Saved {
  Buf S, sa, T;  // [N + 1, K, V], [T, V], [N, C, C]
};

struct FwdWork {
  Scores sc;
  Buf T, r, sa, ob;
  FwdWork(int64_t C, int64_t V) : sc(C), T(C * C), r(C * V), sa(C * V), ob(C * V) {}
};

// Chunk n of one head: S' from the state S [K, V] entering it (S' may be S: in place); o
// (head-offset) and saved (whose T and sa rows of chunk n it fills) may be null.
void chunk_forward(Head& hd, FwdWork& ws, int64_t n, const float* S, float* S_next, float* o, Saved* saved) {
  const int64_t C = hd.C, K = hd.d.K, V = hd.d.V;
  hd.prefetch(n + 1);
  const int64_t c = hd.gather(n), t0 = n * C;
  float *T = saved ? &saved->T[n * C * C] : ws.T.data(), *sa = saved ? &saved->sa[t0 * V] : ws.sa.data();
  scores(hd, c, ws.sc);
  unit_lower_inverse(ws.sc.ab.data(), c, C, T);
  small_gemm(false, false, c, V, c, 1.0f, ws.sc.ak.data(), C, hd.vc.data(), V, 0.0f, ws.r.data(), V);
  small_gemm(false, false, c, V, K, 1.0f, hd.ag.data(), K, S, V, 1.0f, ws.r.data(), V);
  small_gemm(false, false, c, V, c, 1.0f, T, C, ws.r.data(), V, 0.0f, sa, V);
  if (o) {
    small_gemm(false, false, c, V, K, hd.scale, hd.qg.data(), K, S, V, 0.0f, ws.ob.data(), V);
    small_gemm(false, false, c, V, c, hd.scale, ws.sc.qb.data(), C, sa, V, 1.0f, ws.ob.data(), V);
    small_gemm(false, false, c, V, c, hd.scale, ws.sc.qk.data(), C, hd.vc.data(), V, 1.0f, ws.ob.data(), V);
    for (int64_t i = 0; i < c; ++i) std::memcpy(o + (t0 + i) * hd.d.H * V, &ws.ob[i * V], sizeof(float) * V);
  }
  for (int64_t x = 0; x < K; ++x) {
    const float e = hd.ec[x];
#pragma omp simd
    for (int64_t j = 0; j < V; ++j) S_next[x * V + j] = e * S[x * V + j];
  }
  small_gemm(true, false, K, V, c, 1.0f, hd.bd.data(), K, sa, V, 1.0f, S_next, V);
  small_gemm(true, false, K, V, c, 1.0f, hd.kd.data(), K, hd.vc.data(), V, 1.0f, S_next, V);
}

// Heads a thread walks together, chunk by chunk: neighbouring heads of a token row share cache lines
// and pages, so chunks outer, heads inner. Bounded: the backward keeps Saved per head of a group.
constexpr int64_t kHeadGroup = 4;

int64_t head_index(const Rwkv7Dims& d, int64_t bh) { return (bh / d.H) * d.T * d.H + bh % d.H; }

}  // namespace

void rwkv7_chunk_fwd(const Rwkv7Params& p, const Rwkv7Dims& d, const float* q, const float* w, const float* k,
                     const float* v, const float* a, const float* b, const float* h0, float* o, float* ht) {
  const int64_t KV = d.K * d.V;
  parallel_for_items(d.B * d.H, [&](int64_t lo, int64_t hi) {
    FwdWork ws(p.chunk, d.V);
    for (int64_t g0 = lo; g0 < hi; g0 += kHeadGroup) {
      const int64_t g1 = std::min(hi, g0 + kHeadGroup);
      std::vector<Head> heads;
      heads.reserve(kHeadGroup);
      for (int64_t bh = g0; bh < g1; ++bh) {
        heads.emplace_back(p, d, q, w, k, v, a, b, bh);
        for (int64_t x = 0; x < KV; ++x) ht[bh * KV + x] = h0 ? h0[bh * KV + x] : 0.0f;
      }
      for (int64_t n = 0; n < (d.T + p.chunk - 1) / p.chunk; ++n)
        for (int64_t bh = g0; bh < g1; ++bh)
          chunk_forward(heads[bh - g0], ws, n, ht + bh * KV, ht + bh * KV, o + head_index(d, bh) * d.V, nullptr);
    }
  });
}

namespace {

struct BwdWork {
  Scores sc, dsc;
  Buf dO, dsa, dv, dr, dqg, dag, dkd, dbd, dkinv, dbinv, dS0, dG, dGm, dGc, diag;
  BwdWork(int64_t C, int64_t K, int64_t V)
      : sc(C), dsc(C), dO(C * V), dsa(C * V), dv(C * V), dr(C * V), dqg(C * K), dag(C * K), dkd(C * K), dbd(C * K),
        dkinv(C * K), dbinv(C * K), dS0(K * V), dG(C * K), dGm(C * K), dGc(K), diag(4 * C) {}
};

// Backward of X_ts = sum_d x_td y_sd exp(Gx_td - G_sd) element-wise: accumulates dx, dy, dGx, dG.
// Where the exponent is identically 0 (s = t for Gx = G, s = t - 1 for Gx = Gm) the gate terms
// cancel exactly and are skipped: f32 rounding of O(1) terms would swamp a true dw of ~e^-20.
void direct_scores_bwd(const Head& hd, int64_t c, const float* dX, const float* x, const float* Gx, const float* y,
                       bool inclusive, float* dx, float* dy, float* dGx, float* dG) {
  const int64_t K = hd.d.K, C = hd.C;
  const float* G = hd.G.data();
  for (int64_t t = 0; t < c; ++t)
    for (int64_t s = 0; s < (inclusive ? t + 1 : t); ++s) {
      const float g = dX[t * C + s];
      const float gate = s == (inclusive ? t : t - 1) ? 0.0f : 1.0f;
      float *dxt = dx + t * K, *dys = dy + s * K, *dGxt = dGx + t * K, *dGs = dG + s * K;
      const float *xt = x + t * K, *ys = y + s * K, *Gxt = Gx + t * K, *Gs = G + s * K;
#pragma omp simd
      for (int64_t i = 0; i < K; ++i) {
        const float e = g * exp_f32(std::min(Gxt[i] - Gs[i], 0.0f)), z = gate * e * xt[i] * ys[i];
        dxt[i] += e * ys[i];
        dys[i] += e * xt[i];
        dGxt[i] += z;
        dGs[i] -= z;
      }
    }
}

// dS0 += e^{Gc} o dS (row-wise), dGc = e^{Gc} o rowsum(S0 o dS).
void state_decay_grads(int64_t K, int64_t V, const float* __restrict S0, const float* __restrict dS,
                       const float* __restrict ec, float* __restrict dS0, float* __restrict dGc) {
  for (int64_t x = 0; x < K; ++x) {
    const float* __restrict s0 = S0 + x * V;
    const float* __restrict ds = dS + x * V;
    float* __restrict d0 = dS0 + x * V;
    const float e = ec[x];
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (int64_t j = 0; j < V; ++j) {
      acc += s0[j] * ds[j];
      d0[j] += e * ds[j];
    }
    dGc[x] = e * acc;
  }
}

// From the gradients of the scaled factors (dq of q e^G, da of a e^Gm, dk of k e^{Gc - G}, db of
// b e^{Gc - G}, and factorised dkinv, dbinv of k e^-G, b e^-G) to those of q, a, k, b, and the gate
// terms into dG, dGm, dGc. A template so the simd loop has no branch.
template <bool kFactorised>
void factor_grads(const Head& hd, int64_t c, BwdWork& ws, float* __restrict dq, float* __restrict da,
                  float* __restrict dk, float* __restrict db) {
  const int64_t K = hd.d.K;
  const float *__restrict qg = hd.qg.data(), *__restrict ag = hd.ag.data(), *__restrict kd = hd.kd.data();
  const float *__restrict bd = hd.bd.data(), *__restrict eg = hd.eg.data(), *__restrict egm = hd.egm.data();
  const float *__restrict el = hd.el.data(), *__restrict kinv = hd.kinv.data(), *__restrict binv = hd.binv.data();
  const float *__restrict einv = hd.einv.data(), *__restrict dkinv = ws.dkinv.data();
  const float* __restrict dbinv = ws.dbinv.data();
  float *__restrict dG = ws.dG.data(), *__restrict dGm = ws.dGm.data(), *__restrict dGc = ws.dGc.data();
  for (int64_t t = 0; t < c; ++t) {
    const float keep = t == c - 1 ? 0.0f : 1.0f;  // e^{Gc - G} = 1 there: its gate terms cancel exactly
#pragma omp simd
    for (int64_t x = 0; x < K; ++x) {
      const int64_t r = t * K + x;
      float g = dG[r] + dq[r] * qg[r];
      dq[r] *= eg[r];
      dGm[r] += da[r] * ag[r];
      da[r] *= egm[r];
      const float zk = keep * (dk[r] * kd[r] + db[r] * bd[r]);
      g -= zk;
      dGc[x] += zk;
      dk[r] *= el[r];
      db[r] *= el[r];
      if constexpr (kFactorised) {
        g -= dkinv[r] * kinv[r] + dbinv[r] * binv[r];
        dk[r] += dkinv[r] * einv[r];
        db[r] += dbinv[r] * einv[r];
      }
      dG[r] = g;
    }
  }
}

// The plain-dot diagonals of the factorised scores (diag: [4, C] for qk, qb, ak, ab).
void lag_diag_grads(const Head& hd, int64_t c, const float* diag, float* __restrict dq, float* __restrict da,
                    float* __restrict dk, float* __restrict db) {
  const int64_t K = hd.d.K, C = hd.C;
  const float *__restrict qc = hd.qc.data(), *__restrict kc = hd.kc.data(), *__restrict ac = hd.ac.data();
  const float* __restrict bc = hd.bc.data();
  for (int64_t t = 0; t < c; ++t) {
    const float d0 = diag[t], d1 = diag[C + t], d2 = diag[2 * C + t], d3 = diag[3 * C + t];
    const int64_t r = t * K;
#pragma omp simd
    for (int64_t x = 0; x < K; ++x) {
      dq[r + x] += d0 * kc[r + x] + d1 * bc[r + x];
      dk[r + x] += d0 * qc[r + x];
      db[r + x] += d1 * qc[r + x];
    }
    if (t == 0) continue;
    const int64_t rp = r - K;
#pragma omp simd
    for (int64_t x = 0; x < K; ++x) {
      da[r + x] += d2 * kc[rp + x] + d3 * bc[rp + x];
      dk[rp + x] += d2 * ac[r + x];
      db[rp + x] += d3 * ac[r + x];
    }
  }
}

struct HeadGradsF {
  float *dq, *dw, *dk, *dv, *da, *db;  // head-offset, strided like the inputs
};

// Chunk n of the reverse pass; dS [K, V] enters as the gradient of the state leaving the chunk and
// leaves as that of the state entering it. Derivation: README.md "Chunk backward".
void chunk_backward(Head& hd, const Saved& sv, BwdWork& ws, int64_t n, const float* d_o, float* dS,
                    const HeadGradsF& gr) {
  const int64_t C = hd.C, K = hd.d.K, V = hd.d.V, HK = hd.d.H * K, HV = hd.d.H * V;
  if (n > 0) {  // chunk n - 1's inputs, saved rows and gradient rows
    const int64_t tp = (n - 1) * C;
    hd.prefetch(n - 1);
    queue_prefetch(d_o + tp * HV, C, HV, V);
    queue_prefetch(&sv.S[(n - 1) * K * V], 1, 0, K * V);
    queue_prefetch(&sv.sa[tp * V], 1, 0, C * V);
    queue_prefetch(&sv.T[(n - 1) * C * C], 1, 0, C * C);
    for (float* x : {gr.dq, gr.dw, gr.dk, gr.da, gr.db}) queue_prefetch(x + tp * HK, C, HK, K, true);
    queue_prefetch(gr.dv + tp * HV, C, HV, V, true);
  }
  const int64_t c = hd.gather(n), t0 = n * C;
  const float *S0 = &sv.S[n * K * V], *sa = &sv.sa[t0 * V], *T = &sv.T[n * C * C];
  Scores &sc = ws.sc, &dsc = ws.dsc;
  scores(hd, c, sc);
  for (int64_t i = 0; i < c; ++i) std::memcpy(&ws.dO[i * V], d_o + (t0 + i) * HV, sizeof(float) * V);
  const float s = hd.scale;
  // O = scale (qg S0 + Aqb SA + Aqk V)
  small_gemm(false, true, c, K, V, s, ws.dO.data(), V, S0, V, 0.0f, ws.dqg.data(), K);
  small_gemm(false, true, c, c, V, s, ws.dO.data(), V, sa, V, 0.0f, dsc.qb.data(), C);
  small_gemm(false, true, c, c, V, s, ws.dO.data(), V, hd.vc.data(), V, 0.0f, dsc.qk.data(), C);
  mask(dsc.qb.data(), c, C, 0), mask(dsc.qk.data(), c, C, 0);
  small_gemm(true, false, c, V, c, s, sc.qb.data(), C, ws.dO.data(), V, 0.0f, ws.dsa.data(), V);
  small_gemm(true, false, c, V, c, s, sc.qk.data(), C, ws.dO.data(), V, 0.0f, ws.dv.data(), V);
  small_gemm(true, false, K, V, c, s, hd.qg.data(), K, ws.dO.data(), V, 0.0f, ws.dS0.data(), V);
  // S' = e^{Gc} S0 + bd^T SA + kd^T V
  small_gemm(false, false, c, V, K, 1.0f, hd.bd.data(), K, dS, V, 1.0f, ws.dsa.data(), V);
  small_gemm(false, false, c, V, K, 1.0f, hd.kd.data(), K, dS, V, 1.0f, ws.dv.data(), V);
  small_gemm(false, true, c, K, V, 1.0f, sa, V, dS, V, 0.0f, ws.dbd.data(), K);
  small_gemm(false, true, c, K, V, 1.0f, hd.vc.data(), V, dS, V, 0.0f, ws.dkd.data(), K);
  state_decay_grads(K, V, S0, dS, hd.ec.data(), ws.dS0.data(), ws.dGc.data());
  // SA = T R, R = Aak V + ag S0, T = (I - Aab)^-1: dR = T^T dSA, dAab = dR SA^T.
  small_gemm(true, false, c, V, c, 1.0f, T, C, ws.dsa.data(), V, 0.0f, ws.dr.data(), V);
  small_gemm(false, true, c, c, V, 1.0f, ws.dr.data(), V, sa, V, 0.0f, dsc.ab.data(), C);
  small_gemm(false, true, c, c, V, 1.0f, ws.dr.data(), V, hd.vc.data(), V, 0.0f, dsc.ak.data(), C);
  mask(dsc.ab.data(), c, C, 1), mask(dsc.ak.data(), c, C, 1);
  small_gemm(true, false, c, V, c, 1.0f, sc.ak.data(), C, ws.dr.data(), V, 1.0f, ws.dv.data(), V);
  small_gemm(false, true, c, K, V, 1.0f, ws.dr.data(), V, S0, V, 0.0f, ws.dag.data(), K);
  small_gemm(true, false, K, V, c, 1.0f, hd.ag.data(), K, ws.dr.data(), V, 1.0f, ws.dS0.data(), V);
  std::memcpy(dS, ws.dS0.data(), sizeof(float) * K * V);

  float *dG = ws.dG.data(), *dGm = ws.dGm.data();
  std::fill(dG, dG + c * K, 0.0f);
  std::fill(dGm, dGm + c * K, 0.0f);
  if (hd.factorised) {  // scores = (x e^Gx)(y e^-G)^T below the lag diagonal, plain dots on it
    for (int64_t t = 0; t < c; ++t) {
      ws.diag[0 * C + t] = std::exchange(dsc.qk[t * C + t], 0.0f);
      ws.diag[1 * C + t] = std::exchange(dsc.qb[t * C + t], 0.0f);
      ws.diag[2 * C + t] = t > 0 ? std::exchange(dsc.ak[t * C + t - 1], 0.0f) : 0.0f;
      ws.diag[3 * C + t] = t > 0 ? std::exchange(dsc.ab[t * C + t - 1], 0.0f) : 0.0f;
    }
    small_gemm(false, false, c, K, c, 1.0f, dsc.qk.data(), C, hd.kinv.data(), K, 1.0f, ws.dqg.data(), K);
    small_gemm(false, false, c, K, c, 1.0f, dsc.qb.data(), C, hd.binv.data(), K, 1.0f, ws.dqg.data(), K);
    small_gemm(false, false, c, K, c, 1.0f, dsc.ak.data(), C, hd.kinv.data(), K, 1.0f, ws.dag.data(), K);
    small_gemm(false, false, c, K, c, 1.0f, dsc.ab.data(), C, hd.binv.data(), K, 1.0f, ws.dag.data(), K);
    small_gemm(true, false, c, K, c, 1.0f, dsc.qk.data(), C, hd.qg.data(), K, 0.0f, ws.dkinv.data(), K);
    small_gemm(true, false, c, K, c, 1.0f, dsc.ak.data(), C, hd.ag.data(), K, 1.0f, ws.dkinv.data(), K);
    small_gemm(true, false, c, K, c, 1.0f, dsc.qb.data(), C, hd.qg.data(), K, 0.0f, ws.dbinv.data(), K);
    small_gemm(true, false, c, K, c, 1.0f, dsc.ab.data(), C, hd.ag.data(), K, 1.0f, ws.dbinv.data(), K);
  }
  float *dq = ws.dqg.data(), *da = ws.dag.data(), *dk = ws.dkd.data(), *db = ws.dbd.data();
  if (hd.factorised) {
    factor_grads<true>(hd, c, ws, dq, da, dk, db);
    lag_diag_grads(hd, c, ws.diag.data(), dq, da, dk, db);
  } else {
    factor_grads<false>(hd, c, ws, dq, da, dk, db);
    const float *qc = hd.qc.data(), *kc = hd.kc.data(), *ac = hd.ac.data(), *bc = hd.bc.data();
    direct_scores_bwd(hd, c, dsc.qk.data(), qc, hd.G.data(), kc, true, dq, dk, dG, dG);
    direct_scores_bwd(hd, c, dsc.qb.data(), qc, hd.G.data(), bc, true, dq, db, dG, dG);
    direct_scores_bwd(hd, c, dsc.ak.data(), ac, hd.Gm.data(), kc, false, da, dk, dGm, dG);
    direct_scores_bwd(hd, c, dsc.ab.data(), ac, hd.Gm.data(), bc, false, da, db, dGm, dG);
  }
  // Gm_t = G_{t-1}, Gc = G_{c-1}; dw = reverse cumsum of dG over the chunk.
  for (int64_t x = 0; x < K; ++x) dG[(c - 1) * K + x] += ws.dGc[x];
  for (int64_t t = 1; t < c; ++t)
    for (int64_t x = 0; x < K; ++x) dG[(t - 1) * K + x] += dGm[t * K + x];
  for (int64_t t = c - 2; t >= 0; --t)
    for (int64_t x = 0; x < K; ++x) dG[t * K + x] += dG[(t + 1) * K + x];
  for (int64_t t = 0; t < c; ++t) {
    const int64_t o = (t0 + t) * HK;
    std::memcpy(gr.dq + o, &dq[t * K], sizeof(float) * K);
    std::memcpy(gr.dw + o, &dG[t * K], sizeof(float) * K);
    std::memcpy(gr.dk + o, &dk[t * K], sizeof(float) * K);
    std::memcpy(gr.da + o, &da[t * K], sizeof(float) * K);
    std::memcpy(gr.db + o, &db[t * K], sizeof(float) * K);
    std::memcpy(gr.dv + (t0 + t) * HV, &ws.dv[t * V], sizeof(float) * V);
  }
}

}  // namespace

void rwkv7_chunk_bwd(const Rwkv7Params& p, const Rwkv7Dims& d, const float* q, const float* w, const float* k,
                     const float* v, const float* a, const float* b, const float* h0, const float* d_o,
                     const float* d_ht, const Rwkv7Grads<float>& g) {
  const int64_t KV = d.K * d.V, C = p.chunk;
  parallel_for_items(d.B * d.H, [&](int64_t lo, int64_t hi) {
    FwdWork fw(C, d.V);
    BwdWork bw(C, d.K, d.V);
    // Kept across calls: a training step's backward reuses the pages instead of faulting in fresh
    // ones per head.
    thread_local std::vector<Saved> saved(kHeadGroup);
    Buf dS(kHeadGroup * KV);
    const int64_t N = (d.T + C - 1) / C;
    for (int64_t g0 = lo; g0 < hi; g0 += kHeadGroup) {
      const int64_t g1 = std::min(hi, g0 + kHeadGroup);
      std::vector<Head> heads;
      heads.reserve(kHeadGroup);
      for (int64_t bh = g0; bh < g1; ++bh) {
        heads.emplace_back(p, d, q, w, k, v, a, b, bh);
        Saved& sv = saved[bh - g0];
        sv.S.resize((N + 1) * KV), sv.sa.resize(d.T * d.V), sv.T.resize(N * C * C);
        for (int64_t x = 0; x < KV; ++x) {
          sv.S[x] = h0 ? h0[bh * KV + x] : 0.0f;
          dS[(bh - g0) * KV + x] = d_ht ? d_ht[bh * KV + x] : 0.0f;
        }
      }
      for (int64_t n = 0; n < N; ++n)
        for (int64_t bh = g0; bh < g1; ++bh)
          chunk_forward(heads[bh - g0], fw, n, &saved[bh - g0].S[n * KV], &saved[bh - g0].S[(n + 1) * KV], nullptr,
                        &saved[bh - g0]);
      for (int64_t n = N - 1; n >= 0; --n)
        for (int64_t bh = g0; bh < g1; ++bh) {
          const int64_t at = head_index(d, bh);
          HeadGradsF hg{g.dq + at * d.K, g.dw + at * d.K, g.dk + at * d.K, g.dv + at * d.V, g.da + at * d.K,
                        g.db + at * d.K};
          chunk_backward(heads[bh - g0], saved[bh - g0], bw, n, d_o + at * d.V, &dS[(bh - g0) * KV], hg);
        }
      if (g.dh0)
        for (int64_t bh = g0; bh < g1; ++bh) std::memcpy(g.dh0 + bh * KV, &dS[(bh - g0) * KV], sizeof(float) * KV);
    }
  });
}

}  // namespace speedlm::ops
