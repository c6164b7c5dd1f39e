// Plain softmax attention, f32: the Tq x Tk score matrix of a head is materialised one block of
// kRowBlock query rows at a time, with the rows of the query heads that share a kv head stacked
// into the same block; S = scale Q K^T, O = P V and the five backward products are gemm() calls
// on the packed query rows and on K, V addressed in place through their row stride.
// bf16 mode: the same products through gemm_bf16() (AMX where present), every operand dense
// (K, V copied per kv head as [B, KVH, Tk, Dh], score blocks with row stride n, dK and dV
// accumulated in dense per-head buffers): oneDNN 2.6 leaves its AMX kernels for strided operands. Causal blocks
// stop at their last visible key, which skips the upper triangle. Scratch is per thread,
// O(kStackRows * Tk) floats. README.md has the math.
#include <algorithm>
#include <cmath>

#include "core/parallel.h"
#include "core/simd_math.h"
#include "ops/attention/attention/attention.h"
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

// A block of work: query rows [i0, i0 + m) of the query heads [h0, h0 + gh) of batch entry b,
// which all read kv head kvh. Their rows are stacked (row r = head h0 + r / m, query i0 + r % m)
// into one GEMM of gh * m rows: the heads of a GQA group share K and V, so stacking turns gh
// small GEMMs into one taller one. Keys [0, n) cover every row's visible keys.
struct Block {
  int64_t b, kvh, h0, gh, i0, m, n;
  int64_t rows() const { return gh * m; }
  int64_t head(int64_t r) const { return h0 + r / m; }
  int64_t query(int64_t r) const { return i0 + r % m; }
};

struct Plan {
  AttentionDims d;
  bool causal;
  float scale;
  int64_t group;   // query heads per kv head
  int64_t rows;    // query rows per head in a block
  int64_t blocks;  // row blocks per head
  int64_t stack;   // query heads stacked in a block (the last stack of a group may hold fewer)
  int64_t stacks;  // stacks per group
  int64_t ld;      // row stride of the score blocks

  Plan(const AttentionParams& p, const AttentionDims& dims)
      : d(dims),
        causal(p.causal),
        scale(p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(dims.Dh))),
        group(dims.H / dims.KVH),
        rows(std::min(kRowBlock, dims.Tq)),
        blocks((dims.Tq + rows - 1) / rows),
        stack(std::clamp<int64_t>(kStackRows / rows, 1, group)),
        stacks((group + stack - 1) / stack),
        ld((dims.Tk + 15) / 16 * 16) {}

  // Keys [0, visible(i)) are visible to query i: bottom-right aligned causal mask.
  int64_t visible(int64_t i) const { return causal ? i + d.Tk - d.Tq + 1 : d.Tk; }
  Block block(int64_t b, int64_t kvh, int64_t s, int64_t blk) const {
    const int64_t h0 = kvh * group + s * stack, i0 = blk * rows, m = std::min(rows, d.Tq - i0);
    return {b, kvh, h0, std::min(stack, (kvh + 1) * group - h0), i0, m, visible(i0 + m - 1)};
  }
  // Offsets of a query row in [B, Tq, H, Dh] and of kv head kvh's first key in [B, Tk, KVH, Dh].
  int64_t q_at(const Block& bl, int64_t r) const { return ((bl.b * d.Tq + bl.query(r)) * d.H + bl.head(r)) * d.Dh; }
  int64_t kv_at(const Block& bl) const { return (bl.b * d.Tk * d.KVH + bl.kvh) * d.Dh; }
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
                         const float* v, float* o, float* lse) {
  SPEEDLM_ASSERT(attention_check(p, d).is_ok(), "{}", attention_check(p, d).message());
  const Plan pl(p, d);
  // Work items are (b, kv head, stack, row block): independent, each writes its own rows of o and lse.
  const int64_t items = d.B * d.KVH * pl.stacks * pl.blocks;
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
      const int64_t blk = item % pl.blocks, s = item / pl.blocks % pl.stacks, bk = item / (pl.blocks * pl.stacks);
      const Block bl = pl.block(bk / d.KVH, bk % d.KVH, s, blk);
      // K and V of this kv head, and the row stride of the score block: dense in bf16 mode.
      const int64_t kv16 = (bl.b * d.KVH + bl.kvh) * d.Tk * d.Dh, ldk = p.bf16 ? d.Dh : pl.ldk();
      const int64_t ls = p.bf16 ? bl.n : pl.ld;
      const Operand K{k + pl.kv_at(bl), p.bf16 ? k16.bf16() + kv16 : nullptr};
      const Operand V{v + pl.kv_at(bl), p.bf16 ? v16.bf16() + kv16 : nullptr};
      pack(pl, bl, q, Qp);
      mm(false, true, bl.rows(), bl.n, d.Dh, pl.scale, operand(Qp, bl.rows() * d.Dh, Q16), d.Dh, K, ldk, 0.0f, S, ls);
      // Unnormalised P = exp(S - rowmax), zero past the visible keys; O is divided by the row sum
      // after the GEMM (rows * Dh multiplies instead of rows * n).
      for (int64_t r = 0; r < bl.rows(); ++r) {
        float* sr = S + r * ls;
        const int64_t nv = pl.visible(bl.query(r));
        float mx = sr[0], sum = 0.0f;
        // Written as a select: GCC leaves a std::max reduction scalar.
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < nv; ++j) mx = sr[j] > mx ? sr[j] : mx;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < nv; ++j) {
          sr[j] = exp_f32(sr[j] - mx);
          sum += sr[j];
        }
        std::fill(sr + nv, sr + bl.n, 0.0f);
        lse[(bl.b * d.H + bl.head(r)) * d.Tq + bl.query(r)] = mx + std::log(sum);
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
                         float* dv) {
  SPEEDLM_ASSERT(attention_check(p, d).is_ok(), "{}", attention_check(p, d).message());
  const Plan pl(p, d);
  // Work items are (b, kv head): each owns its dk, dv rows and loops over the query heads of its
  // group, so the sums over query heads need no synchronisation. dq rows belong to one query head.
  const double item_flops = 10.0 * static_cast<double>(d.Tq * d.Tk * d.Dh * pl.group);
  const Tensor k16 = p.bf16 ? dense_bf16(d, k) : Tensor(), v16 = p.bf16 ? dense_bf16(d, v) : Tensor();
  parallel_for(d.B * d.KVH, Plan::grain(item_flops), [&](int64_t begin, int64_t end) {
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
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / d.KVH, kvh = item % d.KVH, ldk = p.bf16 ? d.Dh : pl.ldk();
      float *dK_out = dk + (b * d.Tk * d.KVH + kvh) * d.Dh, *dV_out = dv + (b * d.Tk * d.KVH + kvh) * d.Dh;
      float *dK = p.bf16 ? dkv.f32() : dK_out, *dV = p.bf16 ? dkv.f32() + d.Tk * d.Dh : dV_out;
      for (int64_t j = 0; j < d.Tk; ++j) {
        std::fill_n(dK + j * ldk, d.Dh, 0.0f);
        std::fill_n(dV + j * ldk, d.Dh, 0.0f);
      }
      const int64_t kv16 = (b * d.KVH + kvh) * d.Tk * d.Dh;
      for (int64_t s = 0; s < pl.stacks; ++s)
        for (int64_t blk = 0; blk < pl.blocks; ++blk) {
          const Block bl = pl.block(b, kvh, s, blk);
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
          // P = exp(S - lse) recomputed; dS = P * (dP - D).
          for (int64_t r = 0; r < bl.rows(); ++r) {
            float *pr = P + r * ls, *ds = dS + r * ls;
            const int64_t nv = pl.visible(bl.query(r));
            const float l = lse[(b * d.H + bl.head(r)) * d.Tq + bl.query(r)];
            // A row with one visible key has P = 1 and dS = 0: taking D = dP there makes dS exactly 0.
            const float Dr = nv == 1 ? ds[0] : D[r];
#pragma omp simd
            for (int64_t j = 0; j < nv; ++j) {
              pr[j] = exp_f32(pr[j] - l);
              ds[j] = pr[j] * (ds[j] - Dr);
            }
            std::fill(pr + nv, pr + bl.n, 0.0f);
            std::fill(ds + nv, ds + bl.n, 0.0f);
          }
          const Operand Pm = operand(P, bl.rows() * ls, P16), dSm = operand(dS, bl.rows() * ls, dS16);
          mm(true, false, bl.n, d.Dh, bl.rows(), 1.0f, Pm, ls, dO, d.Dh, 1.0f, dV, ldk);
          mm(true, false, bl.n, d.Dh, bl.rows(), pl.scale, dSm, ls, Q, d.Dh, 1.0f, dK, ldk);
          mm(false, false, bl.rows(), d.Dh, bl.n, pl.scale, dSm, ls, K, ldk, 0.0f, dQp, d.Dh);
          for_rows(bl, [&](int64_t r) {
            float* dqr = dq + pl.q_at(bl, r);
#pragma omp simd
            for (int64_t c = 0; c < d.Dh; ++c) dqr[c] = dQp[r * d.Dh + c];
          });
        }
      if (p.bf16) {
        for (int64_t j = 0; j < d.Tk; ++j) {
          std::copy_n(dK + j * d.Dh, d.Dh, dK_out + j * pl.ldk());
          std::copy_n(dV + j * d.Dh, d.Dh, dV_out + j * pl.ldk());
        }
      }
    }
  });
}

}  // namespace speedlm::ops
