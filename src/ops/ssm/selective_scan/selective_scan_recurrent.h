// The token recurrence of one channel (b, d), forward and backward, shared by the reference
// (T = double) and the step form (T = float). Internal to this op folder.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace speedlm::ops::sscan {

// Channel (b, d): u, delta, y at base + t * D; Bm, Cm at base + t * N; A row [N].
template <typename T>
struct ChannelView {
  const T *u, *delta, *A, *Bm, *Cm;
  T Dd;  // skip weight D[d]
  int64_t D, N;
};

// Tokens [t0, t1) on the state h [N] (in place); y (strided like u) may be null.
template <typename T>
void channel_fwd(const ChannelView<T>& c, int64_t t0, int64_t t1, T* h, T* y) {
  for (int64_t t = t0; t < t1; ++t) {
    const T dt = c.delta[t * c.D], x = c.u[t * c.D];
    const T *Bt = c.Bm + t * c.N, *Ct = c.Cm + t * c.N;
    T acc = c.Dd * x;
    for (int64_t n = 0; n < c.N; ++n) {
      h[n] = std::exp(dt * c.A[n]) * h[n] + dt * Bt[n] * x;
      acc += Ct[n] * h[n];
    }
    if (y) y[t * c.D] = acc;
  }
}

// Gradients of one channel: du, ddelta strided like u (overwritten); dA [N], dB, dC (strided like
// Bm) and dD are accumulated.
template <typename T>
struct ChannelGrads {
  T *du, *ddelta, *dA, *dB, *dC, *dD;
};

// Reverse pass over [t0, t1): h0 is the state entering t0, dh [N] the gradient of the state
// leaving t1 - 1 (updated in place to that of the state entering t0). Formulas: README.md.
template <typename T>
void channel_bwd(const ChannelView<T>& c, int64_t t0, int64_t t1, const T* h0, const T* d_y, T* dh,
                 const ChannelGrads<T>& g, std::vector<T>& states) {
  const int64_t N = c.N, n_tok = t1 - t0;
  states.resize(static_cast<size_t>((n_tok + 1) * N));
  std::memcpy(states.data(), h0, sizeof(T) * N);
  for (int64_t t = 0; t < n_tok; ++t) {
    std::memcpy(states.data() + (t + 1) * N, states.data() + t * N, sizeof(T) * N);
    channel_fwd(c, t0 + t, t0 + t + 1, states.data() + (t + 1) * N, static_cast<T*>(nullptr));
  }
  for (int64_t t = n_tok - 1; t >= 0; --t) {
    const int64_t tt = t0 + t;
    const T dt = c.delta[tt * c.D], x = c.u[tt * c.D], dy = d_y[tt * c.D];
    const T *Bt = c.Bm + tt * c.N, *Ct = c.Cm + tt * c.N, *hp = states.data() + t * N, *hc = hp + N;
    T* dBt = g.dB + tt * c.N;
    T* dCt = g.dC + tt * c.N;
    T du = c.Dd * dy, dd = T(0);
    *g.dD += x * dy;
    for (int64_t n = 0; n < N; ++n) {
      dh[n] += Ct[n] * dy;
      dCt[n] += dy * hc[n];
      const T a = std::exp(dt * c.A[n]);
      dd += dh[n] * (c.A[n] * a * hp[n] + Bt[n] * x);
      g.dA[n] += dh[n] * hp[n] * a * dt;
      dBt[n] += dh[n] * dt * x;
      du += dh[n] * dt * Bt[n];
      dh[n] *= a;
    }
    g.du[tt * c.D] = du;
    g.ddelta[tt * c.D] = dd;
  }
}

}  // namespace speedlm::ops::sscan
