// The token recurrence of one RWKV-7 head, forward and backward, shared by the reference
// (T = double) and the step form (T = float). Internal to this op folder.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace speedlm::ops::rwkv7 {

// One head's view of the [B, T, H, *] inputs: token t of this head is at base + t * stride.
template <typename T>
struct HeadView {
  const T *q, *w, *k, *v, *a, *b;
  int64_t k_stride, v_stride;
  int64_t K, V;
  T scale;
};

// Tokens [t0, t1) on state S [K, V] (in place); o (strided like v) may be null. sa: scratch [V].
template <typename T>
void head_fwd(const HeadView<T>& h, int64_t t0, int64_t t1, T* S, T* o, std::vector<T>& sa) {
  const int64_t K = h.K, V = h.V;
  sa.resize(V);
  for (int64_t t = t0; t < t1; ++t) {
    const T *wt = h.w + t * h.k_stride, *kt = h.k + t * h.k_stride, *at = h.a + t * h.k_stride,
            *bt = h.b + t * h.k_stride, *vt = h.v + t * h.v_stride;
    for (int64_t j = 0; j < V; ++j) sa[j] = T(0);
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j < V; ++j) sa[j] += at[i] * S[i * V + j];
    for (int64_t i = 0; i < K; ++i) {
      const T e = std::exp(wt[i]);
      for (int64_t j = 0; j < V; ++j) S[i * V + j] = e * S[i * V + j] + bt[i] * sa[j] + kt[i] * vt[j];
    }
    if (!o) continue;
    const T* qt = h.q + t * h.k_stride;
    T* ot = o + t * h.v_stride;
    for (int64_t j = 0; j < V; ++j) ot[j] = T(0);
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j < V; ++j) ot[j] += qt[i] * S[i * V + j];
    for (int64_t j = 0; j < V; ++j) ot[j] *= h.scale;
  }
}

// Gradient outputs of one head, strided like the inputs.
template <typename T>
struct HeadGrads {
  T *dq, *dw, *dk, *dv, *da, *db;
};

// Reverse pass over tokens [t0, t1): S0 is the state entering t0, dS [K, V] the gradient of the
// state leaving t1 - 1 (updated in place to that of the state entering t0). Recomputes the
// segment's states into `states`. Formulas: README.md "Recurrent backward".
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
  T *sa = tmp.data(), *dsa = sa + V;
  for (int64_t t = n - 1; t >= 0; --t) {
    const int64_t tt = t0 + t, ko = tt * h.k_stride, vo = tt * h.v_stride;
    const T *Sp = states.data() + t * KV, *St = Sp + KV;
    const T *qt = h.q + ko, *wt = h.w + ko, *kt = h.k + ko, *at = h.a + ko, *bt = h.b + ko, *vt = h.v + vo;
    const T* dot = d_o + vo;
    for (int64_t i = 0; i < K; ++i) {
      T acc = T(0);
      for (int64_t j = 0; j < V; ++j) {
        dS[i * V + j] += h.scale * qt[i] * dot[j];
        acc += St[i * V + j] * dot[j];
      }
      gr.dq[ko + i] = h.scale * acc;
    }
    for (int64_t j = 0; j < V; ++j) {
      T s = T(0), ds = T(0), dv = T(0);
      for (int64_t i = 0; i < K; ++i) {
        s += at[i] * Sp[i * V + j];
        ds += bt[i] * dS[i * V + j];
        dv += kt[i] * dS[i * V + j];
      }
      sa[j] = s;
      dsa[j] = ds;
      gr.dv[vo + j] = dv;
    }
    for (int64_t i = 0; i < K; ++i) {
      const T e = std::exp(wt[i]);
      T dk = T(0), db = T(0), da = T(0), dw = T(0);
      for (int64_t j = 0; j < V; ++j) {
        const T g = dS[i * V + j];
        dk += g * vt[j];
        db += g * sa[j];
        da += Sp[i * V + j] * dsa[j];
        dw += g * Sp[i * V + j];
        dS[i * V + j] = e * g + at[i] * dsa[j];
      }
      gr.dk[ko + i] = dk;
      gr.db[ko + i] = db;
      gr.da[ko + i] = da;
      gr.dw[ko + i] = e * dw;
    }
  }
}

}  // namespace speedlm::ops::rwkv7
