// The token recurrence of one head, forward and backward, shared by the reference (T = double)
// and the step form (T = float). Internal to this op folder.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace speedlm::ops::gdr {

// One head's view of the [B, T, H, *] inputs: token t of this head is at base + t * stride.
template <typename T>
struct HeadView {
  const T *q, *k, *v, *beta, *g;  // g may be null (g = 0)
  int64_t qk_stride, v_stride, s_stride;
  int64_t K, V;
  T scale;
  const T* qt(int64_t t) const { return q + t * qk_stride; }
  const T* kt(int64_t t) const { return k + t * qk_stride; }
  const T* vt(int64_t t) const { return v + t * v_stride; }
  T bt(int64_t t) const { return beta[t * s_stride]; }
  T gt(int64_t t) const { return g ? g[t * s_stride] : T(0); }
};

// Tokens [t0, t1) on state S [K, V] (in place); o (strided like v) may be null.
template <typename T>
void head_fwd(const HeadView<T>& h, int64_t t0, int64_t t1, T* S, T* o, std::vector<T>& u) {
  const int64_t K = h.K, V = h.V;
  u.resize(V);
  for (int64_t t = t0; t < t1; ++t) {
    const T *kt = h.kt(t), *vt = h.vt(t);
    const T a = std::exp(h.gt(t)), b = h.bt(t);
    for (int64_t j = 0; j < V; ++j) u[j] = T(0);
    for (int64_t i = 0; i < K; ++i) {
      T* Si = S + i * V;
      for (int64_t j = 0; j < V; ++j) {
        Si[j] *= a;
        u[j] += kt[i] * Si[j];
      }
    }
    for (int64_t j = 0; j < V; ++j) u[j] = b * (vt[j] - u[j]);
    for (int64_t i = 0; i < K; ++i) {
      T* Si = S + i * V;
      for (int64_t j = 0; j < V; ++j) Si[j] += kt[i] * u[j];
    }
    if (!o) continue;
    const T* qt = h.qt(t);
    T* ot = o + t * h.v_stride;
    for (int64_t j = 0; j < V; ++j) ot[j] = T(0);
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j < V; ++j) ot[j] += qt[i] * S[i * V + j];
    for (int64_t j = 0; j < V; ++j) ot[j] *= h.scale;
  }
}

// Gradient outputs of one head, strided like the inputs; dg may be null.
template <typename T>
struct HeadGrads {
  T *dq, *dk, *dv, *dbeta, *dg;
};

// Reverse pass over tokens [t0, t1): S0 is the state entering t0, dS [K, V] the gradient of the
// state leaving t1 - 1 (updated in place to the gradient of the state entering t0). Recomputes
// the (t1 - t0 + 1) states of the segment into `states`. Formulas: algorithms.md §4.3, README.md.
template <typename T>
void head_bwd(const HeadView<T>& h, int64_t t0, int64_t t1, const T* S0, const T* d_o, T* dS,
              const HeadGrads<T>& gr, std::vector<T>& states, std::vector<T>& tmp) {
  const int64_t K = h.K, V = h.V, KV = K * V, n = t1 - t0;
  states.resize(static_cast<size_t>((n + 1) * KV));
  std::memcpy(states.data(), S0, sizeof(T) * KV);
  for (int64_t t = 0; t < n; ++t) {
    std::memcpy(states.data() + (t + 1) * KV, states.data() + t * KV, sizeof(T) * KV);
    head_fwd(h, t0 + t, t0 + t + 1, states.data() + (t + 1) * KV, static_cast<T*>(nullptr), tmp);
  }
  tmp.resize(static_cast<size_t>(2 * V));
  T *du = tmp.data(), *vp = du + V;
  for (int64_t t = n - 1; t >= 0; --t) {
    const int64_t tt = t0 + t;
    const T *Sp = states.data() + t * KV, *St = Sp + KV;
    const T *qt = h.qt(tt), *kt = h.kt(tt), *vt = h.vt(tt), *dot = d_o + tt * h.v_stride;
    const T a = std::exp(h.gt(tt)), b = h.bt(tt);
    T *dqt = gr.dq + tt * h.qk_stride, *dkt = gr.dk + tt * h.qk_stride, *dvt = gr.dv + tt * h.v_stride;
    // o_t = scale S_t^T q_t.
    for (int64_t i = 0; i < K; ++i) {
      T acc = T(0);
      for (int64_t j = 0; j < V; ++j) {
        dS[i * V + j] += h.scale * qt[i] * dot[j];
        acc += St[i * V + j] * dot[j];
      }
      dqt[i] = h.scale * acc;
    }
    // S_t = S~ + k u^T with S~ = a S_{t-1}, u = b (v - S~^T k).
    for (int64_t j = 0; j < V; ++j) {
      T acc = T(0), sk = T(0);
      for (int64_t i = 0; i < K; ++i) {
        acc += dS[i * V + j] * kt[i];
        sk += a * Sp[i * V + j] * kt[i];
      }
      du[j] = acc;
      vp[j] = vt[j] - sk;
    }
    T db = T(0);
    for (int64_t j = 0; j < V; ++j) {
      db += du[j] * vp[j];
      dvt[j] = b * du[j];
    }
    gr.dbeta[tt * h.s_stride] = db;
    // dk = dS u - S~ (b du);  dS~ = dS - k (b du)^T.
    T dga = T(0);
    for (int64_t i = 0; i < K; ++i) {
      T acc = T(0), acc2 = T(0);
      for (int64_t j = 0; j < V; ++j) {
        acc += dS[i * V + j] * b * vp[j];
        acc2 += a * Sp[i * V + j] * b * du[j];
      }
      dkt[i] = acc - acc2;
    }
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j < V; ++j) {
        T& e = dS[i * V + j];
        e -= kt[i] * b * du[j];
        dga += e * a * Sp[i * V + j];  // <dS~, S~>
        e *= a;
      }
    if (gr.dg) gr.dg[tt * h.s_stride] = dga;
  }
}

}  // namespace speedlm::ops::gdr
