// Chunk form of the selective scan. Work units are (b, block of kBlock channels); a unit walks the
// tokens in order with its block's state [kBlock, N] resident in L1, vectorised over n. The
// backward keeps a state checkpoint every p.chunk tokens, recomputes one segment's states at a time
// and walks it in reverse. dA, dB, dC, dD are summed over units in thread-local buffers.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "core/simd_math.h"
#include "ops/ssm/selective_scan/selective_scan.h"

namespace speedlm::ops {

namespace {

constexpr int64_t kBlock = 16;

struct Unit {
  int64_t b, d0, d1;
};

Unit unit_of(const SelectiveScanDims& d, int64_t i) {
  const int64_t blocks = (d.D + kBlock - 1) / kBlock, b = i / blocks, d0 = (i % blocks) * kBlock;
  return {b, d0, std::min(d.D, d0 + kBlock)};
}

int64_t units(const SelectiveScanDims& d) { return d.B * ((d.D + kBlock - 1) / kBlock); }

// Tokens [t0, t1) of a unit; h is [d1 - d0, N] in place; y may be null.
void unit_fwd(const SelectiveScanDims& d, const Unit& un, int64_t t0, int64_t t1, const float* u, const float* delta,
              const float* A, const float* Bm, const float* Cm, const float* Dskip, float* h, float* y) {
  const int64_t N = d.N;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t x0 = (un.b * d.T + t) * d.D;
    const float *Bt = Bm + (un.b * d.T + t) * N, *Ct = Cm + (un.b * d.T + t) * N;
    for (int64_t c = un.d0; c < un.d1; ++c) {
      const float dt = delta[x0 + c], x = u[x0 + c], dtx = dt * x;
      const float* Ar = A + c * N;
      float* hc = h + (c - un.d0) * N;
      float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
      for (int64_t n = 0; n < N; ++n) {
        hc[n] = exp_f32(dt * Ar[n]) * hc[n] + dtx * Bt[n];
        acc += Ct[n] * hc[n];
      }
      if (y) y[x0 + c] = acc + (Dskip ? Dskip[c] * x : 0.0f);
    }
  }
}

}  // namespace

void selective_scan_chunk_fwd(const SelectiveScanParams&, const SelectiveScanDims& d, const float* u,
                              const float* delta, const float* A, const float* Bm, const float* Cm,
                              const float* Dskip, const float* h0, float* y, float* ht) {
  parallel_for(units(d), 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const Unit un = unit_of(d, i);
      float* h = ht + (un.b * d.D + un.d0) * d.N;
      const int64_t n = (un.d1 - un.d0) * d.N;
      if (h0) std::memcpy(h, h0 + (un.b * d.D + un.d0) * d.N, sizeof(float) * n);
      else std::fill(h, h + n, 0.0f);
      unit_fwd(d, un, 0, d.T, u, delta, A, Bm, Cm, Dskip, h, y);
    }
  });
}

void selective_scan_chunk_bwd(const SelectiveScanParams& p, const SelectiveScanDims& d, const float* u,
                              const float* delta, const float* A, const float* Bm, const float* Cm,
                              const float* Dskip, const float* h0, const float* d_y, const float* d_ht,
                              const SelectiveScanGrads<float>& g) {
  const int64_t N = d.N, C = p.chunk, n_seg = (d.T + C - 1) / C, BN = kBlock * N;
  std::memset(g.dA, 0, sizeof(float) * d.D * N);
  std::memset(g.dB, 0, sizeof(float) * d.B * d.T * N);
  std::memset(g.dC, 0, sizeof(float) * d.B * d.T * N);
  if (g.dDskip) std::memset(g.dDskip, 0, sizeof(float) * d.D);
  parallel_for(units(d), 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> ckpt((n_seg + 1) * BN), states((C + 1) * BN), dh(BN);
    std::vector<float> dA(d.D * N, 0.0f), dB(d.B * d.T * N, 0.0f), dC(d.B * d.T * N, 0.0f), dD(d.D, 0.0f);
    for (int64_t i = lo; i < hi; ++i) {
      const Unit un = unit_of(d, i);
      const int64_t w = (un.d1 - un.d0) * N, si = (un.b * d.D + un.d0) * N;
      for (int64_t x = 0; x < w; ++x) {
        ckpt[x] = h0 ? h0[si + x] : 0.0f;
        dh[x] = d_ht ? d_ht[si + x] : 0.0f;
      }
      for (int64_t s = 0; s < n_seg; ++s) {
        std::memcpy(&ckpt[(s + 1) * BN], &ckpt[s * BN], sizeof(float) * w);
        unit_fwd(d, un, s * C, std::min(d.T, (s + 1) * C), u, delta, A, Bm, Cm, Dskip, &ckpt[(s + 1) * BN], nullptr);
      }
      for (int64_t s = n_seg - 1; s >= 0; --s) {
        const int64_t t0 = s * C, len = std::min(d.T, t0 + C) - t0;
        std::memcpy(states.data(), &ckpt[s * BN], sizeof(float) * w);
        for (int64_t t = 0; t < len; ++t) {
          std::memcpy(&states[(t + 1) * BN], &states[t * BN], sizeof(float) * w);
          unit_fwd(d, un, t0 + t, t0 + t + 1, u, delta, A, Bm, Cm, Dskip, &states[(t + 1) * BN], nullptr);
        }
        for (int64_t t = len - 1; t >= 0; --t) {
          const int64_t tt = t0 + t, x0 = (un.b * d.T + tt) * d.D, bt = (un.b * d.T + tt) * N;
          const float *Bt = Bm + bt, *Ct = Cm + bt;
          float *dBt = &dB[bt], *dCt = &dC[bt];
          for (int64_t c = un.d0; c < un.d1; ++c) {
            const float dt = delta[x0 + c], x = u[x0 + c], dy = d_y[x0 + c], dtx = dt * x;
            const float *Ar = A + c * N, *hp = &states[t * BN + (c - un.d0) * N], *hc = hp + BN;
            float *dhc = &dh[(c - un.d0) * N], *dAc = &dA[c * N];
            float du = 0.0f, dd = 0.0f;
#pragma omp simd reduction(+ : du, dd)
            for (int64_t n = 0; n < N; ++n) {
              const float a = exp_f32(dt * Ar[n]), gh = dhc[n] + Ct[n] * dy;
              dCt[n] += dy * hc[n];
              dd += gh * (Ar[n] * a * hp[n] + Bt[n] * x);
              dAc[n] += gh * hp[n] * a * dt;
              dBt[n] += gh * dtx;
              du += gh * Bt[n];
              dhc[n] = gh * a;
            }
            g.du[x0 + c] = du * dt + (Dskip ? Dskip[c] * dy : 0.0f);
            g.ddelta[x0 + c] = dd;
            dD[c] += x * dy;
          }
        }
      }
      if (g.dh0) std::memcpy(g.dh0 + si, dh.data(), sizeof(float) * w);
    }
#pragma omp critical(selective_scan_bwd_reduce)
    {
      for (int64_t x = 0; x < d.D * N; ++x) g.dA[x] += dA[x];
      for (int64_t x = 0; x < d.B * d.T * N; ++x) {
        g.dB[x] += dB[x];
        g.dC[x] += dC[x];
      }
      if (g.dDskip)
        for (int64_t c = 0; c < d.D; ++c) g.dDskip[c] += dD[c];
    }
  });
}

}  // namespace speedlm::ops
