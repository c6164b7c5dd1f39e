// Plain softmax attention, f32: per head, the Tq x Tk score matrix is materialised one block of
// kRowBlock query rows at a time (S = scale Q K^T and O = P V are gemm() calls addressing one head
// inside [B, T, H, Dh] through row strides), with the masked softmax in between. Causal blocks stop
// at their last visible key, which skips the upper triangle. Scratch is per thread, O(kRowBlock * Tk).
#include <algorithm>
#include <bit>
#include <cmath>

#include "core/parallel.h"
#include "ops/attention/attention/attention.h"
#include "ops/linalg/gemm/gemm.h"

namespace speedlm::ops {

namespace {

// Query rows per score block: large enough for efficient GEMMs, small enough that the causal
// block structure skips most of the masked triangle and a block (64 x Tk floats) stays in L2.
constexpr int64_t kRowBlock = 64;
// Flops a parallel_for chunk should hold (~30 us of GEMM work, DESIGN.md "Threads").
constexpr double kChunkFlops = 2e6;

// exp(x) for x <= 88 as a branch-free polynomial that vectorises (std::exp does not without
// -ffast-math): x = n ln2 + f with |f| <= ln2 / 2, exp(f) by the Cephes expf minimax polynomial
// (relative error ~1e-7), 2^n assembled in the exponent bits. Below -87 it returns exactly 0.
inline float fast_exp(float x) {
  constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float xc = std::max(x, -87.0f);
  const float n = (xc * kLog2e + kRound) - kRound;
  const float f = (xc - n * kLn2Hi) - n * kLn2Lo;
  float y = 1.9875691500e-4f;
  y = y * f + 1.3981999507e-3f;
  y = y * f + 8.3334519073e-3f;
  y = y * f + 4.1665795894e-2f;
  y = y * f + 1.6666665459e-1f;
  y = y * f + 5.0000001201e-1f;
  y = y * f * f + f + 1.0f;
  const float two_n = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return x < -87.0f ? 0.0f : y * two_n;
}

// One head of one batch entry: base pointers and row strides inside [B, T, H, Dh].
struct Head {
  const float *q, *k, *v;
  int64_t ldq, ldk;
};

struct Plan {
  AttentionDims d;
  bool causal;
  float scale;
  int64_t group, blocks, ld;  // query heads per kv head, row blocks per head, score row stride

  Plan(const AttentionParams& p, const AttentionDims& dims)
      : d(dims),
        causal(p.causal),
        scale(p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(dims.Dh))),
        group(dims.H / dims.KVH),
        blocks((dims.Tq + kRowBlock - 1) / kRowBlock),
        ld((dims.Tk + 15) / 16 * 16) {}

  Head head(const float* q, const float* k, const float* v, int64_t b, int64_t h) const {
    return {q + (b * d.Tq * d.H + h) * d.Dh, k + (b * d.Tk * d.KVH + h / group) * d.Dh,
            v + (b * d.Tk * d.KVH + h / group) * d.Dh, d.H * d.Dh, d.KVH * d.Dh};
  }
  // Keys [0, visible(i)) are visible to query i: bottom-right aligned causal mask.
  int64_t visible(int64_t i) const { return causal ? i + d.Tk - d.Tq + 1 : d.Tk; }
  // Grain in work items of `flops` each.
  static int64_t grain(double flops) { return std::max<int64_t>(1, static_cast<int64_t>(kChunkFlops / flops)); }
};

}  // namespace

void attention_plain_fwd(const AttentionParams& p, const AttentionDims& d, const float* q, const float* k,
                         const float* v, float* o, float* lse) {
  SPEEDLM_ASSERT(attention_check(p, d).is_ok(), "{}", attention_check(p, d).message());
  const Plan pl(p, d);
  // Work items are (b, h, row block): independent, each writes its own rows of o and lse.
  const double item_flops = 4.0 * static_cast<double>(std::min(d.Tq, kRowBlock) * d.Tk * d.Dh);
  parallel_for(d.B * d.H * pl.blocks, Plan::grain(item_flops), [&](int64_t begin, int64_t end) {
    Tensor scratch = Tensor::empty({kRowBlock, pl.ld});
    float* S = scratch.f32();
    float inv_sum[kRowBlock];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t bh = item / pl.blocks, b = bh / d.H, h = bh % d.H, i0 = item % pl.blocks * kRowBlock;
      const int64_t m = std::min(kRowBlock, d.Tq - i0), n = pl.visible(i0 + m - 1);
      const Head hd = pl.head(q, k, v, b, h);
      float* O = o + (b * d.Tq * d.H + h) * d.Dh + i0 * hd.ldq;
      float* L = lse + bh * d.Tq + i0;
      gemm(false, true, m, n, d.Dh, pl.scale, hd.q + i0 * hd.ldq, hd.ldq, hd.k, hd.ldk, 0.0f, S, pl.ld);
      // Unnormalised P = exp(S - rowmax), zero past the visible keys; O is divided by the row sum
      // after the GEMM (m * Dh multiplies instead of m * n).
      for (int64_t r = 0; r < m; ++r) {
        float* s = S + r * pl.ld;
        const int64_t nv = pl.visible(i0 + r);
        float mx = s[0], sum = 0.0f;
        // Written as a select: GCC leaves a std::max reduction scalar.
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < nv; ++j) mx = s[j] > mx ? s[j] : mx;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < nv; ++j) {
          s[j] = fast_exp(s[j] - mx);
          sum += s[j];
        }
        std::fill(s + nv, s + n, 0.0f);
        L[r] = mx + std::log(sum);
        inv_sum[r] = 1.0f / sum;
      }
      gemm(false, false, m, d.Dh, n, 1.0f, S, pl.ld, hd.v, hd.ldk, 0.0f, O, hd.ldq);
      for (int64_t r = 0; r < m; ++r)
#pragma omp simd
        for (int64_t c = 0; c < d.Dh; ++c) O[r * hd.ldq + c] *= inv_sum[r];
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
  parallel_for(d.B * d.KVH, Plan::grain(item_flops), [&](int64_t begin, int64_t end) {
    Tensor scratch = Tensor::empty({2, kRowBlock, pl.ld});
    float *P = scratch.f32(), *dS = P + kRowBlock * pl.ld;
    float D[kRowBlock];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / d.KVH, kvh = item % d.KVH, ldk = d.KVH * d.Dh;
      float* dK = dk + (b * d.Tk * d.KVH + kvh) * d.Dh;
      float* dV = dv + (b * d.Tk * d.KVH + kvh) * d.Dh;
      for (int64_t j = 0; j < d.Tk; ++j) {
        std::fill(dK + j * ldk, dK + j * ldk + d.Dh, 0.0f);
        std::fill(dV + j * ldk, dV + j * ldk + d.Dh, 0.0f);
      }
      for (int64_t h = kvh * pl.group; h < (kvh + 1) * pl.group; ++h) {
        const Head hd = pl.head(q, k, v, b, h);
        const int64_t at = (b * d.Tq * d.H + h) * d.Dh;
        const float* L = lse + (b * d.H + h) * d.Tq;
        for (int64_t i0 = 0; i0 < d.Tq; i0 += kRowBlock) {
          const int64_t m = std::min(kRowBlock, d.Tq - i0), n = pl.visible(i0 + m - 1), row = at + i0 * hd.ldq;
          gemm(false, true, m, n, d.Dh, pl.scale, hd.q + i0 * hd.ldq, hd.ldq, hd.k, hd.ldk, 0.0f, P, pl.ld);
          gemm(false, true, m, n, d.Dh, 1.0f, d_o + row, hd.ldq, hd.v, hd.ldk, 0.0f, dS, pl.ld);
          // D_i = dO_i . O_i in a loop of its own, so the loads of the O rows (not in cache) overlap.
          for (int64_t r = 0; r < m; ++r) {
            const float *dor = d_o + row + r * hd.ldq, *orow = o + row + r * hd.ldq;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int64_t c = 0; c < d.Dh; ++c) acc += dor[c] * orow[c];
            D[r] = acc;
          }
          // P = exp(S - lse) recomputed; dS = P * (dP - D).
          for (int64_t r = 0; r < m; ++r) {
            float *pr = P + r * pl.ld, *ds = dS + r * pl.ld;
            const int64_t nv = pl.visible(i0 + r);
            const float l = L[i0 + r];
            // A row with one visible key has P = 1 and dS = 0: taking D = dP there makes dS exactly 0.
            const float Dr = nv == 1 ? ds[0] : D[r];
#pragma omp simd
            for (int64_t j = 0; j < nv; ++j) {
              pr[j] = fast_exp(pr[j] - l);
              ds[j] = pr[j] * (ds[j] - Dr);
            }
            std::fill(pr + nv, pr + n, 0.0f);
            std::fill(ds + nv, ds + n, 0.0f);
          }
          gemm(true, false, n, d.Dh, m, 1.0f, P, pl.ld, d_o + row, hd.ldq, 1.0f, dV, ldk);
          gemm(true, false, n, d.Dh, m, pl.scale, dS, pl.ld, hd.q + i0 * hd.ldq, hd.ldq, 1.0f, dK, ldk);
          gemm(false, false, m, d.Dh, n, pl.scale, dS, pl.ld, hd.k, hd.ldk, 0.0f, dq + row, hd.ldq);
        }
      }
    }
  });
}

}  // namespace speedlm::ops
