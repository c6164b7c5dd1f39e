// Chunk form of the selective scan. Work units are (b, block of kBlock channels), each with its
// state [kBlock, N] vectorised over n; a thread walks time blocks of p.chunk tokens in order and,
// inside each, its units. The backward keeps a state checkpoint per unit every p.chunk tokens,
// recomputes one segment's states at a time and walks it in reverse. dA, dB, dC, dD are summed
// over units in per-range buffers.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "core/simd_math.h"
#include "ops/ssm/selective_scan/selective_scan.h"

namespace speedlm::ops {

namespace {

// Channels per work unit: wide enough that a unit reads whole cache lines of each token row and few
// units walk the sequence (each walk strides through T rows: TLB and prefetch bound at long T).
constexpr int64_t kBlock = 64;

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

// Reverse walk of one unit over tokens [t0, t0 + len): `states` holds the len + 1 states of the
// segment ([len + 1, kBlock, N]), dh [kBlock, N] is carried; dA, dB, dC, dD accumulate.
void unit_bwd(const SelectiveScanDims& d, const Unit& un, int64_t t0, int64_t len, const float* u, const float* delta,
              const float* A, const float* Bm, const float* Cm, const float* Dskip, const float* d_y,
              const float* states, float* dh, float* dA, float* dB, float* dC, float* dD, float* du_out,
              float* ddelta_out) {
  const int64_t N = d.N, BN = kBlock * N;
  for (int64_t t = len - 1; t >= 0; --t) {
    const int64_t tt = t0 + t, x0 = (un.b * d.T + tt) * d.D, bt = (un.b * d.T + tt) * N;
    const float *Bt = Bm + bt, *Ct = Cm + bt;
    float *dBt = dB + bt, *dCt = dC + bt;
    for (int64_t c = un.d0; c < un.d1; ++c) {
      const float dt = delta[x0 + c], x = u[x0 + c], dy = d_y[x0 + c], dtx = dt * x;
      const float *Ar = A + c * N, *hp = states + t * BN + (c - un.d0) * N, *hc = hp + BN;
      float *dhc = dh + (c - un.d0) * N, *dAc = dA + c * N;
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
      du_out[x0 + c] = du * dt + (Dskip ? Dskip[c] * dy : 0.0f);
      ddelta_out[x0 + c] = dd;
      dD[c] += x * dy;
    }
  }
}

}  // namespace

void selective_scan_chunk_fwd(const SelectiveScanParams& p, const SelectiveScanDims& d, const float* u,
                              const float* delta, const float* A, const float* Bm, const float* Cm,
                              const float* Dskip, const float* h0, float* y, float* ht) {
  parallel_for(units(d), 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const Unit un = unit_of(d, i);
      float* h = ht + (un.b * d.D + un.d0) * d.N;
      const int64_t n = (un.d1 - un.d0) * d.N;
      if (h0) std::memcpy(h, h0 + (un.b * d.D + un.d0) * d.N, sizeof(float) * n);
      else std::fill(h, h + n, 0.0f);
    }
    // Time blocks outer, units inner: the rows of one block are reused by every unit.
    for (int64_t t0 = 0; t0 < d.T; t0 += p.chunk)
      for (int64_t i = lo; i < hi; ++i) {
        const Unit un = unit_of(d, i);
        unit_fwd(d, un, t0, std::min(d.T, t0 + p.chunk), u, delta, A, Bm, Cm, Dskip, ht + (un.b * d.D + un.d0) * d.N,
                 y);
      }
  });
}

void selective_scan_chunk_bwd(const SelectiveScanParams& p, const SelectiveScanDims& d, const float* u,
                              const float* delta, const float* A, const float* Bm, const float* Cm,
                              const float* Dskip, const float* h0, const float* d_y, const float* d_ht,
                              const SelectiveScanGrads<float>& g) {
  const int64_t N = d.N, C = p.chunk, n_seg = (d.T + C - 1) / C, BN = kBlock * N;
  // fill_n, not memset: with T = 0 these buffers may be null.
  std::fill_n(g.dA, d.D * N, float{0});
  std::fill_n(g.dB, d.B * d.T * N, float{0});
  std::fill_n(g.dC, d.B * d.T * N, float{0});
  if (g.dDskip) std::fill_n(g.dDskip, d.D, float{0});
  // Partial sums per thread range (kept at the range's first unit), added in unit order
  // afterwards: deterministic for a given thread count.
  struct Partial {
    std::vector<float> dA, dB, dC, dD;
  };
  std::vector<Partial> parts(units(d));
  parallel_for(units(d), 1, [&](int64_t lo, int64_t hi) {
    const int64_t nu = hi - lo;
    std::vector<float> ckpt(nu * (n_seg + 1) * BN), states((C + 1) * BN), dh(nu * BN);
    auto ck = [&](int64_t i, int64_t s) { return &ckpt[((i - lo) * (n_seg + 1) + s) * BN]; };
    Partial& part = parts[lo];
    part = {std::vector<float>(d.D * N, 0.0f), std::vector<float>(d.B * d.T * N, 0.0f),
            std::vector<float>(d.B * d.T * N, 0.0f), std::vector<float>(d.D, 0.0f)};
    for (int64_t i = lo; i < hi; ++i) {
      const Unit un = unit_of(d, i);
      const int64_t w = (un.d1 - un.d0) * N, si = (un.b * d.D + un.d0) * N;
      for (int64_t x = 0; x < w; ++x) {
        ck(i, 0)[x] = h0 ? h0[si + x] : 0.0f;
        dh[(i - lo) * BN + x] = d_ht ? d_ht[si + x] : 0.0f;
      }
    }
    // Checkpoints: segments outer, units inner (as in the forward).
    for (int64_t s = 0; s < n_seg; ++s)
      for (int64_t i = lo; i < hi; ++i) {
        const Unit un = unit_of(d, i);
        std::memcpy(ck(i, s + 1), ck(i, s), sizeof(float) * BN);
        unit_fwd(d, un, s * C, std::min(d.T, (s + 1) * C), u, delta, A, Bm, Cm, Dskip, ck(i, s + 1), nullptr);
      }
    for (int64_t s = n_seg - 1; s >= 0; --s)
      for (int64_t i = lo; i < hi; ++i) {
        const Unit un = unit_of(d, i);
        const int64_t t0 = s * C, len = std::min(d.T, t0 + C) - t0;
        std::memcpy(states.data(), ck(i, s), sizeof(float) * BN);
        for (int64_t t = 0; t < len; ++t) {
          std::memcpy(&states[(t + 1) * BN], &states[t * BN], sizeof(float) * BN);
          unit_fwd(d, un, t0 + t, t0 + t + 1, u, delta, A, Bm, Cm, Dskip, &states[(t + 1) * BN], nullptr);
        }
        unit_bwd(d, un, t0, len, u, delta, A, Bm, Cm, Dskip, d_y, states.data(), &dh[(i - lo) * BN], part.dA.data(),
                 part.dB.data(), part.dC.data(), part.dD.data(), g.du, g.ddelta);
      }
    if (g.dh0)
      for (int64_t i = lo; i < hi; ++i) {
        const Unit un = unit_of(d, i);
        std::memcpy(g.dh0 + (un.b * d.D + un.d0) * N, &dh[(i - lo) * BN], sizeof(float) * (un.d1 - un.d0) * N);
      }
  });
  for (const Partial& part : parts) {
    if (part.dA.empty()) continue;
    for (int64_t x = 0; x < d.D * N; ++x) g.dA[x] += part.dA[x];
    for (int64_t x = 0; x < d.B * d.T * N; ++x) {
      g.dB[x] += part.dB[x];
      g.dC[x] += part.dC[x];
    }
    if (g.dDskip)
      for (int64_t c = 0; c < d.D; ++c) g.dDskip[c] += part.dD[c];
  }
}

}  // namespace speedlm::ops
