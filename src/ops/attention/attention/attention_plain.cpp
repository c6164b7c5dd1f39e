// Plain softmax attention, f32: the Tq x Tk score matrix of a head is materialised one block of
// kRowBlock query rows at a time, with the rows of the query heads that share a kv head stacked
// into the same block; S = scale Q K^T, O = P V and the five backward products are gemm() calls
// on the packed query rows and on K, V addressed in place through their row stride.
// bf16 mode: the same products through gemm_bf16() (AMX where present), every operand dense
// (K, V copied per kv head as [B, KVH, Tk, Dh], score blocks with row stride n, dK and dV
// accumulated in dense per-head buffers): oneDNN 2.6 leaves its AMX kernels for strided operands. A block
// multiplies only the keys from its first row's first visible key to its last row's last one,
// which skips the causal upper triangle and the keys left of a window. Scratch is per thread,
// O(kStackRows * Tk) floats. README.md has the math.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <vector>

#include "core/parallel.h"
#include "core/simd_math.h"
#include "ops/attention/attention/attention.h"
#include "ops/attention/attention/attention_simd.h"
#include "ops/linalg/gemm/gemm.h"

namespace speedlm::ops {

namespace {

// Query rows per score block: large enough for efficient GEMMs, small enough that the causal
// block structure skips most of the masked triangle and a block (64 x Tk floats) stays in L2.
constexpr int64_t kRowBlock = 64;
// Query heads of a GQA group are stacked into one GEMM up to this many rows.
constexpr int64_t kStackRows = 256;
// Flops a parallel_for chunk should hold (~30 us of GEMM work, DESIGN.md "Threads").
constexpr double kChunkFlops = 2e6;

// A block of work: query rows [i0, i0 + m) of sequence s for the query heads [h0, h0 + gh),
// which all read kv head kvh. Their rows are stacked (row r = head h0 + r / m, query i0 + r % m)
// into one GEMM of gh * m rows: the heads of a GQA group share K and V, so stacking turns gh
// small GEMMs into one taller one. Keys [j0, j0 + n) cover every row's visible keys.
struct Block {
  AttentionSeq s;
  int64_t kvh, h0, gh, i0, m, j0, n;
  int64_t rows() const { return gh * m; }
  int64_t head(int64_t r) const { return h0 + r / m; }
  int64_t query(int64_t r) const { return i0 + r % m; }
};

struct Plan {
  AttentionParams p;
  AttentionDims d;
  float scale;
  int64_t group;   // query heads per kv head
  int64_t max_tq;  // longest sequence's query count
  int64_t rows;    // query rows per head in a block
  int64_t blocks;  // row blocks per head of the longest sequence
  int64_t stack;   // query heads stacked in a block (the last stack of a group may hold fewer)
  int64_t stacks;  // stacks per group
  int64_t ld;      // row stride of the score blocks

  Plan(const AttentionParams& params, const AttentionDims& dims)
      : p(params),
        d(dims),
        scale(p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(dims.Dh))),
        group(dims.H / dims.KVH),
        max_tq(longest(dims)),
        rows(std::clamp<int64_t>(max_tq, 1, kRowBlock)),
        blocks((max_tq + rows - 1) / rows),
        stack(std::clamp<int64_t>(kStackRows / rows, 1, group)),
        stacks((group + stack - 1) / stack),
        ld((dims.Tk + 15) / 16 * 16) {}

  static int64_t longest(const AttentionDims& d) {
    int64_t n = 0;
    for (int64_t s = 0; s < attention_num_seqs(d); ++s) n = std::max(n, attention_seq(d, s).Tq);
    return n;
  }
  int64_t seqs() const { return attention_num_seqs(d); }
  KeyRange keys(const Block& bl, int64_t r) const { return attention_keys(p, bl.s, bl.query(r)); }
  // Row block blk of (sequence, kv head, stack); m = 0 past the end of a shorter sequence.
  Block block(int64_t sq, int64_t kvh, int64_t st, int64_t blk) const {
    const AttentionSeq s = attention_seq(d, sq);
    const int64_t h0 = kvh * group + st * stack, i0 = blk * rows, m = std::clamp<int64_t>(s.Tq - i0, 0, rows);
    Block bl{s, kvh, h0, std::min(stack, (kvh + 1) * group - h0), i0, m, 0, 0};
    if (m > 0) {
      bl.j0 = attention_keys(p, s, i0).lo;
      bl.n = attention_keys(p, s, i0 + m - 1).hi - bl.j0;
    }
    return bl;
  }
  // Offsets of a query row in [B, Tq, H, Dh], of kv head kvh's first key of the block in
  // [B, Tk, KVH, Dh] and of a row's lse in [B, H, Tq].
  int64_t q_at(const Block& bl, int64_t r) const {
    return ((bl.s.b * d.Tq + bl.s.q0 + bl.query(r)) * d.H + bl.head(r)) * d.Dh;
  }
  int64_t kv_at(const Block& bl) const { return ((bl.s.b * d.Tk + bl.s.k0 + bl.j0) * d.KVH + bl.kvh) * d.Dh; }
  int64_t lse_at(const Block& bl, int64_t r) const { return (bl.s.b * d.H + bl.head(r)) * d.Tq + bl.s.q0 + bl.query(r); }
  int64_t ldk() const { return d.KVH * d.Dh; }
  int64_t scratch_rows() const { return stack * rows; }
  // Grain in work items of `flops` each.
  static int64_t grain(double flops) { return std::max<int64_t>(1, static_cast<int64_t>(kChunkFlops / flops)); }
};

// Calls fn(r) for the block's stacked rows in memory order (query-major: the gh heads of one
// query are adjacent in [B, Tq, H, Dh]), which keeps the accesses to q, o, dq sequential.
template <typename Fn>
void for_rows(const Block& bl, Fn&& fn) {
  for (int64_t i = 0; i < bl.m; ++i)
    for (int64_t g = 0; g < bl.gh; ++g) fn(g * bl.m + i);
}

// Copies the block's rows of x [B, Tq, H, Dh] into packed [rows, Dh].
void pack(const Plan& pl, const Block& bl, const float* x, float* xp) {
  for_rows(bl, [&](int64_t r) {
    const float* src = x + pl.q_at(bl, r);
    float* dst = xp + r * pl.d.Dh;
#pragma omp simd
    for (int64_t c = 0; c < pl.d.Dh; ++c) dst[c] = src[c];
  });
}

// A GEMM operand: f32 data, and its dense bf16 copy in bf16 mode.
struct Operand {
  const float* f;
  const uint16_t* h;
};

// C = alpha op(A) op(B) + beta C on the f32 operands, or on their bf16 copies when present.
void mm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, Operand A, int64_t lda, Operand B,
        int64_t ldb, float beta, float* C, int64_t ldc) {
  if (A.h) gemm_bf16(ta, tb, M, N, K, alpha, A.h, lda, B.h, ldb, beta, C, ldc);
  else gemm(ta, tb, M, N, K, alpha, A.f, lda, B.f, ldb, beta, C, ldc);
}

// The operand x (n floats); in bf16 mode (dst given) also rounded into dst.
Operand operand(const float* x, int64_t n, uint16_t* dst) {
  if (dst) convert_to_bf16(x, n, dst);
  return {x, dst};
}

// bf16 copy of k or v [B, Tk, KVH, Dh] as [B, KVH, Tk, Dh], each kv head a dense matrix.
Tensor dense_bf16(const AttentionDims& d, const float* x) {
  Tensor t = Tensor::empty({d.B, d.KVH, d.Tk, d.Dh}, DType::BF16);
  parallel_for(d.B * d.KVH, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / d.KVH, h = i % d.KVH;
      for (int64_t j = 0; j < d.Tk; ++j)
        convert_to_bf16(x + ((b * d.Tk + j) * d.KVH + h) * d.Dh, d.Dh, t.bf16() + (i * d.Tk + j) * d.Dh);
    }
  });
  return t;
}

}  // namespace

void attention_plain_fwd(const AttentionParams& p, const AttentionDims& d, const float* q, const float* k,
                         const float* v, float* o, float* lse, const float* sinks) {
  SPEEDLM_ASSERT(attention_check(p, d).is_ok(), "{}", attention_check(p, d).message());
  const Plan pl(p, d);
  // Work items are (sequence, kv head, stack, row block): independent, each writes its own rows of o and lse.
  const int64_t items = pl.seqs() * d.KVH * pl.stacks * pl.blocks;
  const double item_flops = 4.0 * static_cast<double>(pl.scratch_rows() * d.Tk * d.Dh);
  const Tensor k16 = p.bf16 ? dense_bf16(d, k) : Tensor(), v16 = p.bf16 ? dense_bf16(d, v) : Tensor();
  parallel_for(items, Plan::grain(item_flops), [&](int64_t begin, int64_t end) {
    const int64_t sr = pl.scratch_rows();
    Tensor scratch = Tensor::empty({sr, pl.ld + 2 * d.Dh + 1});
    Tensor scratch16 = Tensor::empty({p.bf16 ? sr : 0, pl.ld + d.Dh}, DType::BF16);
    float *S = scratch.f32(), *Qp = S + sr * pl.ld, *Op = Qp + sr * d.Dh;
    float* inv_sum = Op + sr * d.Dh;
    uint16_t *S16 = p.bf16 ? scratch16.bf16() : nullptr, *Q16 = p.bf16 ? S16 + sr * pl.ld : nullptr;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t blk = item % pl.blocks, st = item / pl.blocks % pl.stacks, sk = item / (pl.blocks * pl.stacks);
      const Block bl = pl.block(sk / d.KVH, sk % d.KVH, st, blk);
      if (bl.m == 0) continue;
      // K and V of this kv head, and the row stride of the score block: dense in bf16 mode.
      const int64_t kv16 = ((bl.s.b * d.KVH + bl.kvh) * d.Tk + bl.s.k0 + bl.j0) * d.Dh;
      const int64_t ldk = p.bf16 ? d.Dh : pl.ldk(), ls = p.bf16 ? bl.n : pl.ld;
      const Operand K{k + pl.kv_at(bl), p.bf16 ? k16.bf16() + kv16 : nullptr};
      const Operand V{v + pl.kv_at(bl), p.bf16 ? v16.bf16() + kv16 : nullptr};
      pack(pl, bl, q, Qp);
      mm(false, true, bl.rows(), bl.n, d.Dh, pl.scale, operand(Qp, bl.rows() * d.Dh, Q16), d.Dh, K, ldk, 0.0f, S, ls);
      // Unnormalised P = exp(S - rowmax), zero outside the visible keys; O is divided by the row
      // sum after the GEMM (rows * Dh multiplies instead of rows * n).
      for (int64_t r = 0; r < bl.rows(); ++r) {
        float* srow = S + r * ls;
        const auto [lo, hi] = pl.keys(bl, r);
        const int64_t a = lo - bl.j0, e = hi - bl.j0;
        if (p.softcap > 0.0f) {
          const float c = p.softcap, inv_c = 1.0f / p.softcap;
#pragma omp simd
          for (int64_t j = a; j < e; ++j) srow[j] = c * tanh_f32(srow[j] * inv_c);
        }
        const float sink = sinks ? sinks[bl.head(r)] : 0.0f;
        float mx = sinks ? sink : srow[a], sum = 0.0f;
        // Written as a select: GCC leaves a std::max reduction scalar.
#pragma omp simd reduction(max : mx)
        for (int64_t j = a; j < e; ++j) mx = srow[j] > mx ? srow[j] : mx;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = a; j < e; ++j) {
          srow[j] = exp_f32(srow[j] - mx);
          sum += srow[j];
        }
        if (sinks) sum += exp_f32(sink - mx);
        std::fill(srow, srow + a, 0.0f);
        std::fill(srow + e, srow + bl.n, 0.0f);
        lse[pl.lse_at(bl, r)] = mx + std::log(sum);
        inv_sum[r] = 1.0f / sum;
      }
      mm(false, false, bl.rows(), d.Dh, bl.n, 1.0f, operand(S, bl.rows() * ls, S16), ls, V, ldk, 0.0f, Op, d.Dh);
      for_rows(bl, [&](int64_t r) {
        float* orow = o + pl.q_at(bl, r);
#pragma omp simd
        for (int64_t c = 0; c < d.Dh; ++c) orow[c] = Op[r * d.Dh + c] * inv_sum[r];
      });
    }
  });
}

void attention_plain_bwd(const AttentionParams& p, const AttentionDims& d, const float* q, const float* k,
                         const float* v, const float* o, const float* lse, const float* d_o, float* dq, float* dk,
                         float* dv, const float* sinks, float* d_sinks) {
  SPEEDLM_ASSERT(attention_check(p, d).is_ok(), "{}", attention_check(p, d).message());
  const Plan pl(p, d);
  // Work items are (sequence, kv head): each owns its dk, dv rows and loops over the query heads
  // of its group, so the sums over query heads need no synchronisation. dq rows belong to one
  // query head; the per-head sink gradients are summed over items under a lock.
  const double item_flops = 10.0 * static_cast<double>(pl.max_tq * d.Tk * d.Dh * pl.group);
  const Tensor k16 = p.bf16 ? dense_bf16(d, k) : Tensor(), v16 = p.bf16 ? dense_bf16(d, v) : Tensor();
  std::vector<double> d_sink_sum(sinks ? d.H : 0, 0.0);
  std::mutex d_sink_mu;
  parallel_for(pl.seqs() * d.KVH, Plan::grain(item_flops), [&](int64_t begin, int64_t end) {
    const int64_t sr = pl.scratch_rows();
    Tensor scratch = Tensor::empty({sr, 2 * pl.ld + 3 * d.Dh + 1});
    float *P = scratch.f32(), *dS = P + sr * pl.ld, *Qp = dS + sr * pl.ld, *dOp = Qp + sr * d.Dh;
    float *dQp = dOp + sr * d.Dh, *D = dQp + sr * d.Dh;
    Tensor scratch16 = Tensor::empty({p.bf16 ? sr : 0, 2 * pl.ld + 2 * d.Dh}, DType::BF16);
    uint16_t* P16 = p.bf16 ? scratch16.bf16() : nullptr;
    uint16_t *dS16 = p.bf16 ? P16 + sr * pl.ld : nullptr, *Q16 = p.bf16 ? dS16 + sr * pl.ld : nullptr;
    uint16_t* dO16 = p.bf16 ? Q16 + sr * d.Dh : nullptr;
    // bf16 mode accumulates dK, dV of a kv head in dense [Tk, Dh] buffers, scattered at the end.
    Tensor dkv = Tensor::empty({p.bf16 ? 2 * d.Tk : 0, d.Dh});
    std::vector<double> d_sink_part(d_sink_sum.size(), 0.0);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t sq = item / d.KVH, kvh = item % d.KVH, ldk = p.bf16 ? d.Dh : pl.ldk();
      const AttentionSeq s = attention_seq(d, sq);
      const int64_t kv0 = (s.b * d.Tk + s.k0) * d.KVH + kvh;  // first key row of this (sequence, kv head)
      float *dK_out = dk + kv0 * d.Dh, *dV_out = dv + kv0 * d.Dh;
      float *dK = p.bf16 ? dkv.f32() : dK_out, *dV = p.bf16 ? dkv.f32() + s.Tk * d.Dh : dV_out;
      for (int64_t j = 0; j < s.Tk; ++j) {
        std::fill_n(dK + j * ldk, d.Dh, 0.0f);
        std::fill_n(dV + j * ldk, d.Dh, 0.0f);
      }
      for (int64_t st = 0; st < pl.stacks; ++st)
        for (int64_t blk = 0; blk < pl.blocks; ++blk) {
          const Block bl = pl.block(sq, kvh, st, blk);
          if (bl.m == 0) continue;
          const int64_t kv16 = ((s.b * d.KVH + kvh) * d.Tk + s.k0 + bl.j0) * d.Dh;
          const Operand K{k + pl.kv_at(bl), p.bf16 ? k16.bf16() + kv16 : nullptr};
          const Operand V{v + pl.kv_at(bl), p.bf16 ? v16.bf16() + kv16 : nullptr};
          const int64_t ls = p.bf16 ? bl.n : pl.ld;
          pack(pl, bl, q, Qp);
          pack(pl, bl, d_o, dOp);
          const Operand Q = operand(Qp, bl.rows() * d.Dh, Q16), dO = operand(dOp, bl.rows() * d.Dh, dO16);
          // D_i = dO_i . O_i, in a loop of its own so that the loads of the O rows overlap.
          for_rows(bl, [&](int64_t r) {
            const float *dor = dOp + r * d.Dh, *orow = o + pl.q_at(bl, r);
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int64_t c = 0; c < d.Dh; ++c) acc += dor[c] * orow[c];
            D[r] = acc;
          });
          mm(false, true, bl.rows(), bl.n, d.Dh, pl.scale, Q, d.Dh, K, ldk, 0.0f, P, ls);
          mm(false, true, bl.rows(), bl.n, d.Dh, 1.0f, dO, d.Dh, V, ldk, 0.0f, dS, ls);
          // P = exp(S - lse) recomputed; dS = P * (dP - D), times 1 - tanh^2 under a softcap.
          for (int64_t r = 0; r < bl.rows(); ++r) {
            float *pr = P + r * ls, *ds = dS + r * ls;
            const auto [lo, hi] = pl.keys(bl, r);
            const int64_t a = lo - bl.j0, e = hi - bl.j0;
            const float l = lse[pl.lse_at(bl, r)];
            // A row with one visible key and no sink has P = 1 and dS = 0: taking D = dP there
            // makes dS exactly 0.
            const float Dr = e - a == 1 && !sinks ? ds[a] : D[r];
            if (p.softcap > 0.0f) {
              const float c = p.softcap, inv_c = 1.0f / p.softcap;
#pragma omp simd
              for (int64_t j = a; j < e; ++j) {
                const float t = tanh_f32(pr[j] * inv_c);
                pr[j] = exp_f32(c * t - l);
                ds[j] = pr[j] * (ds[j] - Dr) * (1.0f - t * t);
              }
            } else {
#pragma omp simd
              for (int64_t j = a; j < e; ++j) {
                pr[j] = exp_f32(pr[j] - l);
                ds[j] = pr[j] * (ds[j] - Dr);
              }
            }
            if (sinks) d_sink_part[bl.head(r)] -= static_cast<double>(exp_f32(sinks[bl.head(r)] - l)) * D[r];
            std::fill(pr, pr + a, 0.0f);
            std::fill(ds, ds + a, 0.0f);
            std::fill(pr + e, pr + bl.n, 0.0f);
            std::fill(ds + e, ds + bl.n, 0.0f);
          }
          const Operand Pm = operand(P, bl.rows() * ls, P16), dSm = operand(dS, bl.rows() * ls, dS16);
          mm(true, false, bl.n, d.Dh, bl.rows(), 1.0f, Pm, ls, dO, d.Dh, 1.0f, dV + bl.j0 * ldk, ldk);
          mm(true, false, bl.n, d.Dh, bl.rows(), pl.scale, dSm, ls, Q, d.Dh, 1.0f, dK + bl.j0 * ldk, ldk);
          mm(false, false, bl.rows(), d.Dh, bl.n, pl.scale, dSm, ls, K, ldk, 0.0f, dQp, d.Dh);
          for_rows(bl, [&](int64_t r) {
            float* dqr = dq + pl.q_at(bl, r);
#pragma omp simd
            for (int64_t c = 0; c < d.Dh; ++c) dqr[c] = dQp[r * d.Dh + c];
          });
        }
      if (p.bf16) {
        for (int64_t j = 0; j < s.Tk; ++j) {
          std::copy_n(dK + j * d.Dh, d.Dh, dK_out + j * pl.ldk());
          std::copy_n(dV + j * d.Dh, d.Dh, dV_out + j * pl.ldk());
        }
      }
    }
    if (sinks) {
      std::lock_guard<std::mutex> lock(d_sink_mu);
      for (int64_t h = 0; h < d.H; ++h) d_sink_sum[h] += d_sink_part[h];
    }
  });
  if (sinks && d_sinks)
    for (int64_t h = 0; h < d.H; ++h) d_sinks[h] = static_cast<float>(d_sink_sum[h]);
}

}  // namespace speedlm::ops
