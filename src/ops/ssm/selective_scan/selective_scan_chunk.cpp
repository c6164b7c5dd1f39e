// Chunk form of the selective scan. Work units are (b, block of kBlock channels). Inside a unit the
// state, A and the decays are kept transposed, [N, kBlock] (channel fastest), so every inner loop
// runs over channels: the forward's y and the backward's du, ddelta are per-lane sums (no
// horizontal reduction per channel, as a [kBlock, N] layout with N = 16 needs), and the fixed trip
// count kBlock vectorises without remainders (lanes past D are zero-padded: dt = x = 0 keeps them
// at h = 0). A thread walks time blocks of p.chunk tokens in order and, inside each, its units.
// The backward keeps a state checkpoint per unit every p.chunk tokens, recomputes one segment's
// states and decays at a time and walks it in reverse. dA, dB, dC, dD are summed over units in
// per-range buffers.
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
  int64_t b, d0, w;  // batch, first channel, channels (<= kBlock)
};

Unit unit_of(const SelectiveScanDims& d, int64_t i) {
  const int64_t blocks = (d.D + kBlock - 1) / kBlock, b = i / blocks, d0 = (i % blocks) * kBlock;
  return {b, d0, std::min(d.D, d0 + kBlock) - d0};
}

int64_t units(const SelectiveScanDims& d) { return d.B * ((d.D + kBlock - 1) / kBlock); }

int64_t segments(const SelectiveScanParams& p, const SelectiveScanDims& d) { return (d.T + p.chunk - 1) / p.chunk; }

// Checkpoint s (state entering token s * chunk) of unit i: [N, kBlock] in a [units, segments + 1] grid.
int64_t ckpt_offset(const SelectiveScanParams& p, const SelectiveScanDims& d, int64_t i, int64_t s) {
  return (i * (segments(p, d) + 1) + s) * d.N * kBlock;
}

// [.., D, N] rows d0..d0+w of `src` (null = zeros) -> [N, kBlock], zero-padded; `dst` the reverse.
void to_lanes(const Unit& un, int64_t N, const float* src, float* out) {
  std::fill_n(out, N * kBlock, 0.0f);
  if (src)
    for (int64_t c = 0; c < un.w; ++c)
      for (int64_t n = 0; n < N; ++n) out[n * kBlock + c] = src[(un.d0 + c) * N + n];
}
void from_lanes(const Unit& un, int64_t N, const float* in, float* dst) {
  for (int64_t c = 0; c < un.w; ++c)
    for (int64_t n = 0; n < N; ++n) dst[(un.d0 + c) * N + n] = in[n * kBlock + c];
}

// One token row of a unit, zero-padded to kBlock lanes.
struct Row {
  alignas(64) float dt[kBlock], x[kBlock], dtx[kBlock];
};

// Copies `w` floats and zero-fills up to kBlock; the full block (the common case) is a fixed-count
// loop, not a memmove call per row.
void load_lanes(const float* src, int64_t w, float* dst) {
  if (w == kBlock) {
    for (int64_t c = 0; c < kBlock; ++c) dst[c] = src[c];
  } else {
    std::fill_n(dst, kBlock, 0.0f);
    std::copy_n(src, w, dst);
  }
}

void load_row(const Unit& un, int64_t x0, const float* u, const float* delta, Row& r) {
  load_lanes(delta + x0 + un.d0, un.w, r.dt);
  load_lanes(u + x0 + un.d0, un.w, r.x);
  for (int64_t c = 0; c < kBlock; ++c) r.dtx[c] = r.dt[c] * r.x[c];
}

// One token: h_out = a h_in + dtx B_t with a = exp(dt A) (h_out may be h_in); the decays go to
// `a_out` and sum_n C_t[n] h_out[n] to `acc` when those are not null. All [N, kBlock] / [kBlock].
void lanes_step(int64_t N, const Row& r, const float* At, const float* Bt, const float* Ct, const float* h_in,
                float* h_out, float* a_out, float* acc) {
  if (acc) std::fill_n(acc, kBlock, 0.0f);
  for (int64_t n = 0; n < N; ++n) {
    const float bn = Bt[n], cn = Ct[n];
    const float* an = At + n * kBlock;
    const float* hi = h_in + n * kBlock;
    float* ho = h_out + n * kBlock;
    float* ao = a_out ? a_out + n * kBlock : nullptr;
#pragma omp simd simdlen(16)
    for (int64_t c = 0; c < kBlock; ++c) {
      const float a = exp_f32(r.dt[c] * an[c]);
      ho[c] = a * hi[c] + r.dtx[c] * bn;
      if (ao) ao[c] = a;
      if (acc) acc[c] += cn * ho[c];
    }
  }
}

// Unit-local accumulators of the backward, [N, kBlock] for dA (added to the [D, N] sum at the end).
struct UnitGrads {
  float *dA, *dB, *dC;  // dA lanes [N, kBlock]; dB, dC [B, T, N]
  float* dD;            // [kBlock]
};

// Reverse walk of one unit over tokens [t0, t0 + len): `states` [len + 1, N, kBlock] and `decay`
// [len, N, kBlock] of the segment; dh [N, kBlock] is carried. Formulas: README.md; with
// q = gh a h_{t-1}: ddelta = sum_n A q + u sum_n gh B (the second sum is du's), dA += q delta.
void unit_bwd(const SelectiveScanDims& d, const Unit& un, int64_t t0, int64_t len, const float* u,
              const float* delta, const float* At, const float* Bm, const float* Cm, const float* Dskip,
              const float* d_y, const float* states, const float* decay, float* dh, const UnitGrads& g,
              float* du_out, float* ddelta_out) {
  const int64_t N = d.N, S = N * kBlock;
  Row r;
  alignas(64) float dy[kBlock], du[kBlock], dd[kBlock];
  for (int64_t t = len - 1; t >= 0; --t) {
    const int64_t tt = t0 + t, x0 = (un.b * d.T + tt) * d.D, bt = (un.b * d.T + tt) * N;
    load_row(un, x0, u, delta, r);
    load_lanes(d_y + x0 + un.d0, un.w, dy);
    std::fill_n(du, kBlock, 0.0f);
    std::fill_n(dd, kBlock, 0.0f);
    for (int64_t n = 0; n < N; ++n) {
      const float bn = Bm[bt + n], cn = Cm[bt + n];
      const float *an = At + n * kBlock, *hp = states + t * S + n * kBlock, *hc = hp + S,
                  *a = decay + t * S + n * kBlock;
      float *dhn = dh + n * kBlock, *dAn = g.dA + n * kBlock;
      float sB = 0.0f, sC = 0.0f;
#pragma omp simd simdlen(16) reduction(+ : sB, sC)
      for (int64_t c = 0; c < kBlock; ++c) {
        const float gh = dhn[c] + cn * dy[c], q = gh * (a[c] * hp[c]);
        sC += dy[c] * hc[c];
        dd[c] += an[c] * q;
        dAn[c] += q * r.dt[c];
        sB += gh * r.dtx[c];
        du[c] += gh * bn;
        dhn[c] = gh * a[c];
      }
      g.dB[bt + n] += sB;
      g.dC[bt + n] += sC;
    }
    for (int64_t c = 0; c < un.w; ++c) {
      du_out[x0 + un.d0 + c] = du[c] * r.dt[c] + (Dskip ? Dskip[un.d0 + c] * dy[c] : 0.0f);
      ddelta_out[x0 + un.d0 + c] = dd[c] + r.x[c] * du[c];
      g.dD[c] += r.x[c] * dy[c];
    }
  }
}

}  // namespace

int64_t selective_scan_chunk_ckpt_floats(const SelectiveScanParams& p, const SelectiveScanDims& d) {
  return ckpt_offset(p, d, units(d), 0);
}

void selective_scan_chunk_fwd(const SelectiveScanParams& p, const SelectiveScanDims& d, const float* u,
                              const float* delta, const float* A, const float* Bm, const float* Cm,
                              const float* Dskip, const float* h0, float* y, float* ht) {
  selective_scan_chunk_fwd_ckpt(p, d, u, delta, A, Bm, Cm, Dskip, h0, y, ht, nullptr);
}

void selective_scan_chunk_bwd(const SelectiveScanParams& p, const SelectiveScanDims& d, const float* u,
                              const float* delta, const float* A, const float* Bm, const float* Cm,
                              const float* Dskip, const float* h0, const float* d_y, const float* d_ht,
                              const SelectiveScanGrads<float>& g) {
  selective_scan_chunk_bwd_ckpt(p, d, u, delta, A, Bm, Cm, Dskip, h0, d_y, d_ht, g, nullptr);
}

// ckpt null: no checkpoints kept.
void selective_scan_chunk_fwd_ckpt(const SelectiveScanParams& p, const SelectiveScanDims& d, const float* u,
                                   const float* delta, const float* A, const float* Bm, const float* Cm,
                                   const float* Dskip, const float* h0, float* y, float* ht, float* ckpt) {
  const int64_t N = d.N, S = N * kBlock;
  parallel_for(units(d), 1, [&](int64_t lo, int64_t hi) {
    const int64_t nu = hi - lo;
    std::vector<float> At(nu * S), h(nu * S);
    for (int64_t i = lo; i < hi; ++i) {
      const Unit un = unit_of(d, i);
      to_lanes(un, N, A, &At[(i - lo) * S]);
      to_lanes(un, N, h0 ? h0 + un.b * d.D * N : nullptr, &h[(i - lo) * S]);
      if (ckpt) std::copy_n(&h[(i - lo) * S], S, ckpt + ckpt_offset(p, d, i, 0));
    }
    Row r;
    alignas(64) float acc[kBlock];
    // Time blocks outer, units inner: the rows of one block are reused by every unit.
    for (int64_t t0 = 0; t0 < d.T; t0 += p.chunk)
      for (int64_t i = lo; i < hi; ++i) {
        const Unit un = unit_of(d, i);
        float* hu = &h[(i - lo) * S];
        for (int64_t t = t0; t < std::min(d.T, t0 + p.chunk); ++t) {
          const int64_t x0 = (un.b * d.T + t) * d.D, bt = (un.b * d.T + t) * N;
          load_row(un, x0, u, delta, r);
          lanes_step(N, r, &At[(i - lo) * S], Bm + bt, Cm + bt, hu, hu, nullptr, acc);
          for (int64_t c = 0; c < un.w; ++c)
            y[x0 + un.d0 + c] = acc[c] + (Dskip ? Dskip[un.d0 + c] * r.x[c] : 0.0f);
        }
        if (ckpt) std::copy_n(hu, S, ckpt + ckpt_offset(p, d, i, t0 / p.chunk + 1));
      }
    for (int64_t i = lo; i < hi; ++i) {
      const Unit un = unit_of(d, i);
      from_lanes(un, N, &h[(i - lo) * S], ht + un.b * d.D * N);
    }
  });
}

// saved null: the checkpoints come from a pass of this backward's own.
void selective_scan_chunk_bwd_ckpt(const SelectiveScanParams& p, const SelectiveScanDims& d, const float* u,
                                   const float* delta, const float* A, const float* Bm, const float* Cm,
                                   const float* Dskip, const float* h0, const float* d_y, const float* d_ht,
                                   const SelectiveScanGrads<float>& g, const float* saved) {
  const int64_t N = d.N, C = p.chunk, n_seg = segments(p, d), S = N * kBlock;
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
    std::vector<float> At(nu * S), own(saved ? 0 : nu * (n_seg + 1) * S), states((C + 1) * S), decay(C * S),
        dh(nu * S), dA_lanes(S), dD_lanes(kBlock);
    auto own_ck = [&](int64_t i, int64_t s) { return &own[((i - lo) * (n_seg + 1) + s) * S]; };
    auto ck = [&](int64_t i, int64_t s) -> const float* {
      return saved ? saved + ckpt_offset(p, d, i, s) : own_ck(i, s);
    };
    Partial& part = parts[lo];
    part = {std::vector<float>(d.D * N, 0.0f), std::vector<float>(d.B * d.T * N, 0.0f),
            std::vector<float>(d.B * d.T * N, 0.0f), std::vector<float>(d.D, 0.0f)};
    for (int64_t i = lo; i < hi; ++i) {
      const Unit un = unit_of(d, i);
      to_lanes(un, N, A, &At[(i - lo) * S]);
      if (!saved) to_lanes(un, N, h0 ? h0 + un.b * d.D * N : nullptr, own_ck(i, 0));
      to_lanes(un, N, d_ht ? d_ht + un.b * d.D * N : nullptr, &dh[(i - lo) * S]);
    }
    Row r;
    // Checkpoints: segments outer, units inner (as in the forward).
    for (int64_t s = 0; s < (saved ? 0 : n_seg); ++s)
      for (int64_t i = lo; i < hi; ++i) {
        const Unit un = unit_of(d, i);
        float* h = own_ck(i, s + 1);
        std::memcpy(h, ck(i, s), sizeof(float) * S);
        for (int64_t t = s * C; t < std::min(d.T, (s + 1) * C); ++t) {
          const int64_t bt = (un.b * d.T + t) * N;
          load_row(un, (un.b * d.T + t) * d.D, u, delta, r);
          lanes_step(N, r, &At[(i - lo) * S], Bm + bt, Cm + bt, h, h, nullptr, nullptr);
        }
      }
    for (int64_t s = n_seg - 1; s >= 0; --s)
      for (int64_t i = lo; i < hi; ++i) {
        const Unit un = unit_of(d, i);
        const int64_t t0 = s * C, len = std::min(d.T, t0 + C) - t0;
        std::memcpy(states.data(), ck(i, s), sizeof(float) * S);
        for (int64_t t = 0; t < len; ++t) {
          const int64_t bt = (un.b * d.T + t0 + t) * N;
          load_row(un, (un.b * d.T + t0 + t) * d.D, u, delta, r);
          lanes_step(N, r, &At[(i - lo) * S], Bm + bt, Cm + bt, &states[t * S], &states[(t + 1) * S],
                     &decay[t * S], nullptr);
        }
        std::fill(dA_lanes.begin(), dA_lanes.end(), 0.0f);
        std::fill(dD_lanes.begin(), dD_lanes.end(), 0.0f);
        unit_bwd(d, un, t0, len, u, delta, &At[(i - lo) * S], Bm, Cm, Dskip, d_y, states.data(), decay.data(),
                 &dh[(i - lo) * S], {dA_lanes.data(), part.dB.data(), part.dC.data(), dD_lanes.data()}, g.du,
                 g.ddelta);
        for (int64_t c = 0; c < un.w; ++c) {
          for (int64_t n = 0; n < N; ++n) part.dA[(un.d0 + c) * N + n] += dA_lanes[n * kBlock + c];
          part.dD[un.d0 + c] += dD_lanes[c];
        }
      }
    if (g.dh0)
      for (int64_t i = lo; i < hi; ++i) {
        const Unit un = unit_of(d, i);
        from_lanes(un, N, &dh[(i - lo) * S], g.dh0 + un.b * d.D * N);
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
