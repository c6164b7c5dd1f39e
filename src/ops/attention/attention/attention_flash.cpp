// Tiled online-softmax attention (FlashAttention-2), f32. The forward walks the key tiles of a
// query tile once, keeping a running row max m, row sum l and an unnormalised output accumulator
// O; the backward owns the dK, dV of one key tile per work item, recomputes P = exp(S - lse) tile
// by tile and adds dQ into a per-thread buffer. Extra memory, all O(T): K^T (and V^T for the
// backward) packed per key tile, dense per-head copies of V (and Q, K, dO), D and the per-thread
// dQ buffers; tiles are 64 x 64 and live in L1/L2. Tiles entirely outside the mask are skipped; only tiles that cut the mask test it per
// row. README.md has the math.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <omp.h>

#include "core/parallel.h"
#include "core/simd_math.h"
#include "ops/attention/attention/attention.h"
#include "ops/attention/attention/attention_simd.h"
#include "ops/attention/attention/attention_tile_gemm.h"

namespace speedlm::ops {

namespace {

constexpr int64_t kBr = 64;  // query rows per tile
constexpr int64_t kBc = 64;  // keys per tile: the micro-kernel's 64 columns (and softmax_row64's)
// Flops per thread below which an extra thread does not pay (DESIGN.md "Threads": ~30 us).
constexpr double kThreadFlops = 2e6;

struct Flash {
  AttentionParams p;
  AttentionDims d;
  float scale;
  int64_t group, dhp, max_tq = 0, max_tk = 0;
  std::vector<int64_t> tile0;  // first key tile of each sequence in the packed buffers; back() = all tiles

  Flash(const AttentionParams& params, const AttentionDims& dims)
      : p(params),
        d(dims),
        scale(p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(dims.Dh))),
        group(dims.H / dims.KVH),
        dhp((dims.Dh + 15) / 16 * 16) {
    tile0.push_back(0);
    for (int64_t sq = 0; sq < seqs(); ++sq) {
      const AttentionSeq s = attention_seq(d, sq);
      max_tq = std::max(max_tq, s.Tq);
      max_tk = std::max(max_tk, s.Tk);
      tile0.push_back(tile0.back() + (s.Tk + kBc - 1) / kBc);
    }
  }
  int64_t seqs() const { return attention_num_seqs(d); }
  KeyRange keys(const AttentionSeq& s, int64_t i) const { return attention_keys(p, s, i); }
  // Offsets of query row i of head h in [B, Tq, H, Dh], key j of kv head kvh in [B, Tk, KVH, Dh],
  // and of lse / D in [B, H, Tq].
  int64_t q_at(const AttentionSeq& s, int64_t i, int64_t h) const { return ((s.b * d.Tq + s.q0 + i) * d.H + h) * d.Dh; }
  int64_t kv_at(const AttentionSeq& s, int64_t j, int64_t kvh) const {
    return ((s.b * d.Tk + s.k0 + j) * d.KVH + kvh) * d.Dh;
  }
  int64_t row_at(const AttentionSeq& s, int64_t i, int64_t h) const { return (s.b * d.H + h) * d.Tq + s.q0 + i; }
  int64_t ldq() const { return d.H * d.Dh; }
  // Offsets in the dense per-head copies [B, H, Tq, Dh] and [B, KVH, Tk, Dh] (pack_dense).
  int64_t qd_at(const AttentionSeq& s, int64_t i, int64_t h) const { return ((s.b * d.H + h) * d.Tq + s.q0 + i) * d.Dh; }
  int64_t kd_at(const AttentionSeq& s, int64_t j, int64_t kvh) const {
    return ((s.b * d.KVH + kvh) * d.Tk + s.k0 + j) * d.Dh;
  }
  // Packed transposed key tile t of sequence sq and kv head kvh: [Dh, kBc].
  int64_t tile_at(int64_t sq, int64_t t, int64_t kvh) const { return ((tile0[sq] + t) * d.KVH + kvh) * d.Dh * kBc; }
  int threads(double flops) const {
    return static_cast<int>(std::clamp<double>(flops / kThreadFlops, 1.0, static_cast<double>(num_threads())));
  }
  double flops() const { return 4.0 * static_cast<double>(d.B * d.H * d.Tq * d.Tk * d.Dh); }
};

// x [B, Tk, KVH, Dh] -> mult * x^T per key tile, [tiles, KVH, Dh, kBc], zero past a sequence's end:
// the B operand of S = Q K^T (and of dP = dO V^T), read as contiguous 64-float rows. One call
// packs the tiles of one (sequence, kv head) `item`. A tile is first copied row by row into
// `rows` [kBc, Dh], so that both the reads from x and the writes of the transpose are sequential
// (scattered writes cost a cache line per float).
Tensor packed_transposed(const Flash& f) { return Tensor::empty({f.tile0.back() * f.d.KVH * f.d.Dh * kBc}); }
void pack_transposed(const Flash& f, const float* x, float mult, int64_t item, float* t, float* rows) {
  const AttentionDims& d = f.d;
  const int64_t sq = item / d.KVH, kvh = item % d.KVH;
  const AttentionSeq s = attention_seq(d, sq);
  for (int64_t tile = 0; tile < f.tile0[sq + 1] - f.tile0[sq]; ++tile) {
    const int64_t j0 = tile * kBc, nk = std::min(kBc, s.Tk - j0);
    for (int64_t jj = 0; jj < kBc; ++jj) {
      float* row = rows + jj * d.Dh;
      if (jj < nk) std::copy_n(x + f.kv_at(s, j0 + jj, kvh), d.Dh, row);
      else std::fill_n(row, d.Dh, 0.0f);
    }
    float* dst = t + f.tile_at(sq, tile, kvh);
    for (int64_t c = 0; c < d.Dh; ++c)
#pragma omp simd
      for (int64_t jj = 0; jj < kBc; ++jj) dst[c * kBc + jj] = mult * rows[jj * d.Dh + c];
  }
}

// x [B, T, heads, Dh] -> [B, heads, T, Dh]: each head's rows contiguous, so the tile GEMMs read
// B operands as dense rows (strided ones cost ~15% in the micro-kernel: a row stride of H * Dh
// floats maps every row to the same few L1 sets). One call copies one (b, head) `item`.
Tensor packed_dense(const Flash& f, int64_t heads, int64_t T) { return Tensor::empty({f.d.B, heads, T, f.d.Dh}); }
void pack_dense(const Flash& f, const float* x, int64_t heads, int64_t T, int64_t item, float* t) {
  const int64_t Dh = f.d.Dh, b = item / heads, h = item % heads;
  for (int64_t r = 0; r < T; ++r) std::copy_n(x + ((b * T + r) * heads + h) * Dh, Dh, t + (item * T + r) * Dh);
}

// Columns [a, e) of a tile's row starting at key j0 that query i sees; every column for a tile
// inside the mask.
KeyRange tile_cols(const Flash& f, const AttentionSeq& s, int64_t i, int64_t j0, int64_t nk, bool full) {
  if (full) return {0, nk};
  const KeyRange kr = f.keys(s, i);
  return {std::clamp<int64_t>(kr.lo - j0, 0, nk), std::clamp<int64_t>(kr.hi - j0, 0, nk)};
}

// Scratch of one forward work item.
struct FwdScratch {
  float *S, *O, *m, *l, *corr;
};

// Query rows [i0, i0 + mq) of head h in sequence sq.
// vd: V as pack_dense made it.
void forward_tile(const Flash& f, const float* kt, const float* q, const float* vd, const float* sinks, float* o,
                  float* lse, int64_t sq, int64_t h, int64_t i0, int64_t mq, const FwdScratch& w) {
  const AttentionDims& d = f.d;
  const AttentionSeq s = attention_seq(d, sq);
  const int64_t kvh = h / f.group;
  const float* qrow = q + f.q_at(s, i0, h);
  // The sink is a key with value 0 and score sinks[h]: it starts the running max and sum.
  for (int64_t r = 0; r < mq; ++r) {
    w.m[r] = sinks ? sinks[h] : -std::numeric_limits<float>::infinity();
    w.l[r] = sinks ? 1.0f : 0.0f;
  }
  std::fill_n(w.O, mq * f.dhp, 0.0f);
  const KeyRange first = f.keys(s, i0), last = f.keys(s, i0 + mq - 1);
  for (int64_t t = first.lo / kBc; t < (last.hi + kBc - 1) / kBc; ++t) {
    const int64_t j0 = t * kBc, nk = std::min(kBc, s.Tk - j0);
    const bool full = last.lo <= j0 && first.hi >= j0 + kBc;
    tile_gemm(mq, kBc, d.Dh, qrow, f.ldq(), 1, kt + f.tile_at(sq, t, kvh), kBc, w.S, kBc, false);
    for (int64_t r = 0; r < mq; ++r) {
      float* sr = w.S + r * kBc;
      if (full && f.p.softcap == 0.0f) {  // the common case, 16 lanes wide
        float sum = 0.0f;
        const float mx = softmax_row64(sr, w.m[r], &sum);
        w.corr[r] = exp_f32(w.m[r] - mx);
        w.l[r] = w.l[r] * w.corr[r] + sum;
        w.m[r] = mx;
        continue;
      }
      const auto [a, e] = tile_cols(f, s, i0 + r, j0, nk, full);
      if (a >= e) {
        std::fill_n(sr, nk, 0.0f);
        w.corr[r] = 1.0f;
        continue;
      }
      if (f.p.softcap > 0.0f) {
        const float c = f.p.softcap, inv_c = 1.0f / f.p.softcap;
#pragma omp simd
        for (int64_t j = a; j < e; ++j) sr[j] = c * tanh_f32(sr[j] * inv_c);
      }
      float mx = w.m[r], sum = 0.0f;
#pragma omp simd reduction(max : mx)
      for (int64_t j = a; j < e; ++j) mx = sr[j] > mx ? sr[j] : mx;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = a; j < e; ++j) {
        sr[j] = exp_f32(sr[j] - mx);
        sum += sr[j];
      }
      std::fill(sr, sr + a, 0.0f);
      std::fill(sr + e, sr + nk, 0.0f);
      // exp(-inf - mx) is clamped to ~1e-38 by exp_f32; it multiplies l = 0 and O = 0.
      w.corr[r] = exp_f32(w.m[r] - mx);
      w.l[r] = w.l[r] * w.corr[r] + sum;
      w.m[r] = mx;
    }
    tile_gemm(mq, d.Dh, nk, w.S, kBc, 1, vd + f.kd_at(s, j0, kvh), d.Dh, w.O, f.dhp, true, w.corr);
  }
  for (int64_t r = 0; r < mq; ++r) {
    const float inv = 1.0f / w.l[r];
    float* orow = o + f.q_at(s, i0 + r, h);
#pragma omp simd
    for (int64_t c = 0; c < d.Dh; ++c) orow[c] = w.O[r * f.dhp + c] * inv;
    lse[f.row_at(s, i0 + r, h)] = w.m[r] + std::log(w.l[r]);
  }
}

// Scratch of one backward work item.
struct BwdScratch {
  float *S, *dP, *dK, *dV;
};

// Inputs of the backward shared by all work items: q, k, d_o as pack_dense made them.
struct BwdArgs {
  const float *kt, *vt, *qd, *kd, *dod, *lse, *D, *sinks;
};

// Key tile t of kv head kvh in sequence sq: dK, dV of its keys from every query tile that sees
// them; dS K goes into dq_acc ([B, H, Tq, Dh], unscaled).
void backward_tile(const Flash& f, const BwdArgs& in, int64_t sq, int64_t kvh, int64_t t, float* dk, float* dv,
                   float* dq_acc, const BwdScratch& w) {
  const AttentionDims& d = f.d;
  const AttentionSeq s = attention_seq(d, sq);
  const int64_t j0 = t * kBc, nk = std::min(kBc, s.Tk - j0);
  std::fill_n(w.dK, nk * f.dhp, 0.0f);
  std::fill_n(w.dV, nk * f.dhp, 0.0f);
  const float *ktile = in.kt + f.tile_at(sq, t, kvh), *vtile = in.vt + f.tile_at(sq, t, kvh);
  const float* krows = in.kd + f.kd_at(s, j0, kvh);
  for (int64_t h = kvh * f.group; h < (kvh + 1) * f.group; ++h)
    for (int64_t i0 = 0; i0 < s.Tq; i0 += kBr) {
      const int64_t mq = std::min(kBr, s.Tq - i0);
      const KeyRange first = f.keys(s, i0), last = f.keys(s, i0 + mq - 1);
      if (last.hi <= j0 || first.lo >= j0 + nk) continue;  // no row of this query tile sees the key tile
      const bool full = last.lo <= j0 && first.hi >= j0 + kBc;
      const float *qrow = in.qd + f.qd_at(s, i0, h), *dorow = in.dod + f.qd_at(s, i0, h);
      tile_gemm(mq, kBc, d.Dh, qrow, d.Dh, 1, ktile, kBc, w.S, kBc, false);
      tile_gemm(mq, kBc, d.Dh, dorow, d.Dh, 1, vtile, kBc, w.dP, kBc, false);
      // S -> P = exp(S - lse), dP -> dS = P * (dP - D) (times 1 - tanh^2 under a softcap).
      for (int64_t r = 0; r < mq; ++r) {
        float *pr = w.S + r * kBc, *ds = w.dP + r * kBc;
        if (full && f.p.softcap == 0.0f) {  // the common case, 16 lanes wide
          softmax_grad_row64(pr, ds, in.lse[f.row_at(s, i0 + r, h)], in.D[f.row_at(s, i0 + r, h)]);
          continue;
        }
        const auto [a, e] = tile_cols(f, s, i0 + r, j0, nk, full);
        if (a >= e) {
          std::fill_n(pr, nk, 0.0f);
          std::fill_n(ds, nk, 0.0f);
          continue;
        }
        const float l = in.lse[f.row_at(s, i0 + r, h)];
        // A row with one visible key and no sink has P = 1 and dS = 0: D = dP makes it exact.
        const KeyRange kr = f.keys(s, i0 + r);
        const float Dr = kr.hi - kr.lo == 1 && !in.sinks ? ds[a] : in.D[f.row_at(s, i0 + r, h)];
        if (f.p.softcap > 0.0f) {
          const float c = f.p.softcap, inv_c = 1.0f / f.p.softcap;
#pragma omp simd
          for (int64_t j = a; j < e; ++j) {
            const float th = tanh_f32(pr[j] * inv_c);
            pr[j] = exp_f32(c * th - l);
            ds[j] = pr[j] * (ds[j] - Dr) * (1.0f - th * th);
          }
        } else {
#pragma omp simd
          for (int64_t j = a; j < e; ++j) {
            pr[j] = exp_f32(pr[j] - l);
            ds[j] = pr[j] * (ds[j] - Dr);
          }
        }
        std::fill(pr, pr + a, 0.0f);
        std::fill(ds, ds + a, 0.0f);
        std::fill(pr + e, pr + nk, 0.0f);
        std::fill(ds + e, ds + nk, 0.0f);
      }
      // dV += P^T dO, dK += dS^T Q (scaled at the end), dQ += dS K: P^T and dS^T are read in
      // place through their strides.
      tile_gemm(nk, d.Dh, mq, w.S, 1, kBc, dorow, d.Dh, w.dV, f.dhp, true);
      tile_gemm(nk, d.Dh, mq, w.dP, 1, kBc, qrow, d.Dh, w.dK, f.dhp, true);
      tile_gemm(mq, d.Dh, nk, w.dP, kBc, 1, krows, d.Dh, dq_acc + f.qd_at(s, i0, h), d.Dh, true);
    }
  for (int64_t j = 0; j < nk; ++j) {
    float *dkr = dk + f.kv_at(s, j0 + j, kvh), *dvr = dv + f.kv_at(s, j0 + j, kvh);
#pragma omp simd
    for (int64_t c = 0; c < d.Dh; ++c) {
      dkr[c] = f.scale * w.dK[j * f.dhp + c];
      dvr[c] = w.dV[j * f.dhp + c];
    }
  }
}

}  // namespace

void attention_flash_fwd(const AttentionParams& p, const AttentionDims& d, const float* q, const float* k,
                         const float* v, float* o, float* lse, const float* sinks) {
  SPEEDLM_ASSERT(attention_check(p, d).is_ok(), "{}", attention_check(p, d).message());
  const Flash f(p, d);
  Tensor kt = packed_transposed(f), vd = packed_dense(f, d.KVH, d.Tk);
  const int64_t n_kt = f.seqs() * d.KVH, n_pack = n_kt + d.B * d.KVH;
  // Work items are (query tile, sequence, head), the last query tiles first: under a causal mask
  // they are the longest, and dynamic scheduling then balances the threads. One parallel region
  // for the packing and the tiles: on a loaded machine every extra fork/join costs a time slice.
  const int64_t qtiles = (f.max_tq + kBr - 1) / kBr, per_tile = f.seqs() * d.H, items = qtiles * per_tile;
#pragma omp parallel num_threads(f.threads(f.flops()))
  {
    Tensor scratch = Tensor::empty({kBr * (kBc + f.dhp + 3)});
    float* S = scratch.f32();
#pragma omp for schedule(dynamic, 1)
    for (int64_t job = 0; job < n_pack; ++job) {
      if (job < n_kt) pack_transposed(f, k, f.scale, job, kt.f32(), S);
      else pack_dense(f, v, d.KVH, d.Tk, job - n_kt, vd.f32());
    }
    const FwdScratch w{S, S + kBr * kBc, S + kBr * (kBc + f.dhp), S + kBr * (kBc + f.dhp + 1),
                       S + kBr * (kBc + f.dhp + 2)};
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t item = 0; item < items; ++item) {
      const int64_t i0 = (qtiles - 1 - item / per_tile) * kBr, sq = item % per_tile / d.H, h = item % d.H;
      const int64_t tq = attention_seq(d, sq).Tq;
      if (i0 < tq) forward_tile(f, kt.f32(), q, vd.f32(), sinks, o, lse, sq, h, i0, std::min(kBr, tq - i0), w);
    }
  }
}

void attention_flash_bwd(const AttentionParams& p, const AttentionDims& d, const float* q, const float* k,
                         const float* v, const float* o, const float* lse, const float* d_o, float* dq, float* dk,
                         float* dv, const float* sinks, float* d_sinks) {
  SPEEDLM_ASSERT(attention_check(p, d).is_ok(), "{}", attention_check(p, d).message());
  const Flash f(p, d);
  Tensor kt = packed_transposed(f), vt = packed_transposed(f), kd = packed_dense(f, d.KVH, d.Tk);
  Tensor qd = packed_dense(f, d.H, d.Tq), dod = packed_dense(f, d.H, d.Tq), Dt = Tensor::empty({d.B, d.H, d.Tq});
  const BwdArgs in{kt.f32(), vt.f32(), qd.f32(), kd.f32(), dod.f32(), lse, Dt.f32(), sinks};
  // Preparation jobs: the packed operands, and per head D_i = dO_i . O_i (laid out like lse) with
  // the sink gradient: the sink is a key with value 0, so d_sink_h = -sum_i P_sink,i D_i.
  const int64_t n_kt = f.seqs() * d.KVH, n_kd = d.B * d.KVH, n_qd = d.B * d.H;
  const int64_t n_prep = 2 * n_kt + n_kd + 2 * n_qd + d.H;
  auto prep = [&](int64_t job, float* rows) {
    if (job < 2 * n_kt) return pack_transposed(f, job < n_kt ? k : v, job < n_kt ? f.scale : 1.0f, job % n_kt,
                                               (job < n_kt ? kt : vt).f32(), rows);
    job -= 2 * n_kt;
    if (job < n_kd) return pack_dense(f, k, d.KVH, d.Tk, job, kd.f32());
    job -= n_kd;
    if (job < 2 * n_qd) return pack_dense(f, job < n_qd ? q : d_o, d.H, d.Tq, job % n_qd, (job < n_qd ? qd : dod).f32());
    const int64_t h = job - 2 * n_qd;
    double d_sink = 0.0;
    for (int64_t sq = 0; sq < f.seqs(); ++sq) {
      const AttentionSeq s = attention_seq(d, sq);
      for (int64_t i = 0; i < s.Tq; ++i) {
        const float *dor = d_o + f.q_at(s, i, h), *orow = o + f.q_at(s, i, h);
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t c = 0; c < d.Dh; ++c) acc += dor[c] * orow[c];
        Dt.f32()[f.row_at(s, i, h)] = acc;
        if (sinks) d_sink -= static_cast<double>(exp_f32(sinks[h] - lse[f.row_at(s, i, h)])) * acc;
      }
    }
    if (sinks && d_sinks) d_sinks[h] = static_cast<float>(d_sink);
  };
  // Work items are (key tile, sequence, kv head), the first key tiles (the longest under a causal
  // mask) first, dealt round-robin: a fixed item -> thread map keeps the dQ sums deterministic.
  // Each thread accumulates dQ in a dense buffer of its own; they are added in thread order at
  // the end. All in one parallel region (see the forward).
  const int64_t ktiles = (f.max_tk + kBc - 1) / kBc, per_tile = f.seqs() * d.KVH, items = ktiles * per_tile;
  const int64_t nq = d.B * d.Tq * d.H * d.Dh, rows = d.B * d.H * d.Tq;
  const int nt = f.threads(2.5 * f.flops());
  Tensor dq_parts = Tensor::empty({nt, nq});
#pragma omp parallel num_threads(nt)
  {
    Tensor scratch = Tensor::empty({2 * kBr * kBc + 2 * kBc * f.dhp});
    float* S = scratch.f32();
#pragma omp for schedule(dynamic, 1)
    for (int64_t job = 0; job < n_prep; ++job) prep(job, S);
    float* dq_acc = dq_parts.f32() + omp_get_thread_num() * nq;
    std::fill_n(dq_acc, nq, 0.0f);
    const BwdScratch w{S, S + kBr * kBc, S + 2 * kBr * kBc, S + 2 * kBr * kBc + kBc * f.dhp};
#pragma omp for schedule(static, 1)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t t = item / per_tile, sq = item % per_tile / d.KVH, kvh = item % d.KVH;
      if (t * kBc < attention_seq(d, sq).Tk) backward_tile(f, in, sq, kvh, t, dk, dv, dq_acc, w);
    }
    // dq [B, Tq, H, Dh] = scale * the sum of the parts [B, H, Tq, Dh], one row of Dh at a time.
#pragma omp for schedule(static) nowait
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t b = row / (d.H * d.Tq), h = row / d.Tq % d.H, i = row % d.Tq;
      float* out = dq + ((b * d.Tq + i) * d.H + h) * d.Dh;
      std::copy_n(dq_parts.f32() + row * d.Dh, d.Dh, out);
      for (int part = 1; part < nt; ++part) {
        const float* x = dq_parts.f32() + part * nq + row * d.Dh;
#pragma omp simd
        for (int64_t c = 0; c < d.Dh; ++c) out[c] += x[c];
      }
#pragma omp simd
      for (int64_t c = 0; c < d.Dh; ++c) out[c] *= f.scale;
    }
  }
}

}  // namespace speedlm::ops
