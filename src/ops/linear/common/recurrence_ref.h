// The token recurrence shared by the gated linear-attention references (simple_gla, gla):
//   S_t = diag(a_t) S_{t-1} + k_t v_t^T,  o_t = scale * S_t^T q_t,  a_t = exp(g_t)
// with the log gate per head (gate_width 1, g: [B, T, H]), per key channel (gate_width K,
// g: [B, T, H, K]) or absent (gate_width 0). Plain loops, accumulators in T: instantiated
// with double it is the spec; with float it is the step form's backward.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace speedlm::ops::linear_ref {

struct Dims {
  int64_t B, T, H, K, V, gate_width;
  double scale;
};

template <typename T>
T gate_of(const Dims& d, const T* g, int64_t b, int64_t t, int64_t h, int64_t kk) {
  if (d.gate_width == 0) return T(0);
  return g[((b * d.T + t) * d.H + h) * d.gate_width + (d.gate_width == 1 ? 0 : kk)];
}

template <typename T>
void fwd(const Dims& d, const T* q, const T* k, const T* v, const T* g, const T* h0, T* o, T* ht) {
  const int64_t K = d.K, V = d.V;
  std::vector<T> S(K * V);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      for (int64_t i = 0; i < K * V; ++i) S[i] = h0 ? h0[(b * d.H + h) * K * V + i] : T(0);
      for (int64_t t = 0; t < d.T; ++t) {
        const int64_t qk = ((b * d.T + t) * d.H + h) * K, vo = ((b * d.T + t) * d.H + h) * V;
        for (int64_t kk = 0; kk < K; ++kk) {
          T a = std::exp(gate_of(d, g, b, t, h, kk));
          for (int64_t vv = 0; vv < V; ++vv) S[kk * V + vv] = a * S[kk * V + vv] + k[qk + kk] * v[vo + vv];
        }
        for (int64_t vv = 0; vv < V; ++vv) {
          T acc = 0;
          for (int64_t kk = 0; kk < K; ++kk) acc += S[kk * V + vv] * q[qk + kk];
          o[vo + vv] = static_cast<T>(d.scale) * acc;
        }
      }
      if (ht)
        for (int64_t i = 0; i < K * V; ++i) ht[(b * d.H + h) * K * V + i] = S[i];
    }
}

// Reverse pass over recomputed states. dS accumulates dL/dS_t; S_t = a o S_{t-1} + k v^T gives
// dk = dS v, dv = dS^T k, dg = a * <S_{t-1}, dS> (per key row, summed for a scalar gate), and
// dS_{t-1} = a o dS. dg is written when gate_width > 0, dh0 when given.
template <typename T>
void bwd(const Dims& d, const T* q, const T* k, const T* v, const T* g, const T* h0, const T* d_o, const T* d_ht,
         T* dq, T* dk, T* dv, T* dg, T* dh0) {
  const int64_t K = d.K, V = d.V, KV = K * V;
  const T scale = static_cast<T>(d.scale);
  std::vector<T> S((d.T + 1) * KV), dS(KV);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      const int64_t bh = (b * d.H + h) * KV;
      for (int64_t i = 0; i < KV; ++i) S[i] = h0 ? h0[bh + i] : T(0);
      for (int64_t t = 0; t < d.T; ++t) {
        const int64_t qk = ((b * d.T + t) * d.H + h) * K, vo = ((b * d.T + t) * d.H + h) * V;
        T* prev = &S[t * KV];
        T* cur = &S[(t + 1) * KV];
        for (int64_t kk = 0; kk < K; ++kk) {
          T a = std::exp(gate_of(d, g, b, t, h, kk));
          for (int64_t vv = 0; vv < V; ++vv) cur[kk * V + vv] = a * prev[kk * V + vv] + k[qk + kk] * v[vo + vv];
        }
      }
      for (int64_t i = 0; i < KV; ++i) dS[i] = d_ht ? d_ht[bh + i] : T(0);
      for (int64_t t = d.T - 1; t >= 0; --t) {
        const int64_t qk = ((b * d.T + t) * d.H + h) * K, vo = ((b * d.T + t) * d.H + h) * V;
        const T* cur = &S[(t + 1) * KV];
        const T* prev = &S[t * KV];
        for (int64_t kk = 0; kk < K; ++kk) {
          T acc = 0;
          for (int64_t vv = 0; vv < V; ++vv) acc += cur[kk * V + vv] * d_o[vo + vv];
          dq[qk + kk] = scale * acc;
          for (int64_t vv = 0; vv < V; ++vv) dS[kk * V + vv] += scale * q[qk + kk] * d_o[vo + vv];
        }
        for (int64_t kk = 0; kk < K; ++kk) {
          T acc = 0;
          for (int64_t vv = 0; vv < V; ++vv) acc += dS[kk * V + vv] * v[vo + vv];
          dk[qk + kk] = acc;
        }
        for (int64_t vv = 0; vv < V; ++vv) {
          T acc = 0;
          for (int64_t kk = 0; kk < K; ++kk) acc += dS[kk * V + vv] * k[qk + kk];
          dv[vo + vv] = acc;
        }
        T dg_scalar = 0;
        for (int64_t kk = 0; kk < K; ++kk) {
          T a = std::exp(gate_of(d, g, b, t, h, kk)), acc = 0;
          for (int64_t vv = 0; vv < V; ++vv) {
            acc += prev[kk * V + vv] * dS[kk * V + vv];
            dS[kk * V + vv] *= a;
          }
          if (d.gate_width > 1) dg[qk + kk] = a * acc;
          else dg_scalar += a * acc;
        }
        if (d.gate_width == 1) dg[(b * d.T + t) * d.H + h] = dg_scalar;
      }
      if (dh0)
        for (int64_t i = 0; i < KV; ++i) dh0[bh + i] = dS[i];
    }
}

}  // namespace speedlm::ops::linear_ref
