// Fast causal depthwise conv1d. The kernels are templated on the window W and work on blocks of
// 16 channels held in registers (GCC vector types: one zmm with AVX-512, two ymm with AVX2): the
// W taps are loaded once per block and each output sums its W products in a register, where a
// row-at-a-time loop would load, add and store the row once per tap. Channels past the last full
// block run one lane at a time. Rows are threaded over (b, t), in tiles that stay in L1; the
// weight gradient is reduced per channel block by one thread each, in (b, t) order, so it is
// deterministic. Every sum keeps the reference's order (taps ascending), so the results do not
// depend on the blocking.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "core/simd_math.h"
#include "ops/conv/causal_conv1d/causal_conv1d.h"
#include "speedlm/tensor.h"

namespace speedlm::ops {

namespace {

constexpr int64_t kLanes = 16, kTile = 16;

template <int L>
struct VecT;
template <>
struct VecT<kLanes> {
  typedef float type __attribute__((vector_size(4 * kLanes)));
};
template <>
struct VecT<1> {
  using type = float;
};

template <int L>
typename VecT<L>::type load(const float* p) {
  typename VecT<L>::type v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <int L>
void store(float* p, typename VecT<L>::type v) {
  std::memcpy(p, &v, sizeof(v));
}

struct Rows {
  const CausalConv1dDims& d;
  const float *x, *s0;
  // Input row at position t of batch b (t may be negative: s0), nullptr for zeros.
  const float* at(int64_t b, int64_t t) const {
    if (t >= 0) return x + (b * d.T + t) * d.D;
    return s0 ? s0 + (b * (d.W - 1) + t + d.W - 1) * d.D : nullptr;
  }
};

std::vector<float> transpose_taps(const CausalConv1dDims& d, const float* w) {
  std::vector<float> wt(static_cast<size_t>(d.W * d.D));
  for (int64_t c = 0; c < d.D; ++c)
    for (int64_t i = 0; i < d.W; ++i) wt[i * d.D + c] = w[c * d.W + i];
  return wt;
}

// Calls fn.template operator()<L>(c0) for each channel block: full blocks of kLanes, then single
// channels.
template <typename Fn>
void for_blocks(int64_t D, Fn&& fn) {
  int64_t c0 = 0;
  for (; c0 + kLanes <= D; c0 += kLanes) fn.template operator()<kLanes>(c0);
  for (; c0 < D; ++c0) fn.template operator()<1>(c0);
}

// out_row[c0, c0+L) = bias + sum_i wt[i] x_{t-W+1+i} for rows [r0, r1) of (b, t).
template <int W, int L>
void pre_block(const Rows& r, const float* wt, const float* bias, int64_t c0, int64_t r0, int64_t r1, float* out) {
  using V = typename VecT<L>::type;
  const int64_t D = r.d.D, T = r.d.T;
  V w[W];
  for (int i = 0; i < W; ++i) w[i] = load<L>(wt + i * D + c0);
  V b0{};
  if (bias) b0 = load<L>(bias + c0);
  // Walks (b, t) without a division per row; rows past the first W-1 of a sequence read x only.
  for (int64_t row = r0; row < r1;) {
    const int64_t b = row / T, end = std::min(r1, (b + 1) * T);
    for (int64_t t = row % T; row < end; ++row, ++t) {
      V acc = b0;
      if (t >= W - 1) {
        const float* xr = r.x + (row - W + 1) * D + c0;
        for (int i = 0; i < W; ++i) acc += w[i] * load<L>(xr + i * D);
      } else {
        for (int i = 0; i < W; ++i)
          if (const float* xr = r.at(b, t - W + 1 + i)) acc += w[i] * load<L>(xr + c0);
      }
      store<L>(out + row * D + c0, acc);
    }
  }
}

// Pre-activations of rows [r0, r1) into out, a tile at a time, then post(t0, t1) on each tile.
template <int W, typename Post>
void pre_rows(const Rows& r, const float* wt, const float* bias, int64_t r0, int64_t r1, float* out, Post&& post) {
  for (int64_t t0 = r0; t0 < r1; t0 += kTile) {
    const int64_t t1 = std::min(r1, t0 + kTile);
    for_blocks(r.d.D, [&]<int L>(int64_t c0) { pre_block<W, L>(r, wt, bias, c0, t0, t1, out); });
    post(t0, t1);
  }
}

// dx_s[c0, c0+L) = sum_i wt[i] dp_{s+W-1-i} over rows [r0, r1) of (b, s), s in [-lead, T): the
// negative s are the rows of ds0.
template <int W, int L>
void dx_block(const CausalConv1dDims& d, const float* wt, const float* dp, int64_t lead, int64_t c0, int64_t r0,
              int64_t r1, float* dx, float* ds0) {
  using V = typename VecT<L>::type;
  const int64_t D = d.D, T = d.T;
  V w[W];
  for (int i = 0; i < W; ++i) w[i] = load<L>(wt + i * D + c0);
  for (int64_t row = r0; row < r1;) {
    const int64_t b = row / (T + lead), end = std::min(r1, (b + 1) * (T + lead));
    for (int64_t s = row % (T + lead) - lead; row < end; ++row, ++s) {
      float* out = s >= 0 ? dx + (b * T + s) * D : ds0 + (b * (W - 1) + s + W - 1) * D;
      V acc{};
      if (s >= 0 && s + W - 1 < T) {
        const float* g = dp + (b * T + s + W - 1) * D + c0;
        for (int i = 0; i < W; ++i) acc += w[i] * load<L>(g - i * D);
      } else {
        for (int i = 0; i < W; ++i) {
          const int64_t t = s + W - 1 - i;
          if (t >= 0 && t < T) acc += w[i] * load<L>(dp + (b * T + t) * D + c0);
        }
      }
      store<L>(out + c0, acc);
    }
  }
}

// dw[c, i] = sum_t dp_t[c] x_{t-W+1+i}[c] and dbias[c] = sum_t dp_t[c] for c in [c0, c0+L).
template <int W, int L>
void dw_block(const Rows& r, const float* dp, int64_t c0, float* dw, float* dbias) {
  using V = typename VecT<L>::type;
  const int64_t D = r.d.D, T = r.d.T;
  V acc[W + 1] = {};
  for (int64_t b = 0; b < r.d.B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const V g = load<L>(dp + (b * T + t) * D + c0);
      for (int i = 0; i < W; ++i)
        if (const float* xr = r.at(b, t - W + 1 + i)) acc[i] += g * load<L>(xr + c0);
      acc[W] += g;
    }
  float sums[W + 1][L];
  for (int i = 0; i <= W; ++i) store<L>(sums[i], acc[i]);
  for (int c = 0; c < L; ++c) {
    for (int i = 0; i < W; ++i) dw[(c0 + c) * W + i] = sums[i][c];
    if (dbias) dbias[c0 + c] = sums[W][c];
  }
}

// y = silu(y) over n values. Kept out of the templated kernels so that GCC inlines the exp and
// vectorises the loop.
void silu_rows(float* __restrict y, int64_t n) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) y[c] *= sigmoid_f32(y[c]);
}

// dp = dy o silu'(p) over n values, p read from dp: silu'(p) = s (1 + p (1 - s)).
void dsilu_rows(float* __restrict dp, const float* __restrict dy, int64_t n) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) {
    const float s = sigmoid_f32(dp[c]);
    dp[c] = dy[c] * s * (1.0f + dp[c] * (1.0f - s));
  }
}

template <int W>
void fwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const float* x, const float* w, const float* bias,
         const float* s0, float* y) {
  const std::vector<float> wt = transpose_taps(d, w);
  const Rows r{d, x, s0};
  const int64_t D = d.D;
  parallel_for(d.B * d.T, std::max<int64_t>(1, 16384 / (D * W)), [&](int64_t r0, int64_t r1) {
    pre_rows<W>(r, wt.data(), bias, r0, r1, y, [&](int64_t t0, int64_t t1) {
      if (p.silu) silu_rows(y + t0 * D, (t1 - t0) * D);
    });
  });
}

template <int W>
void bwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const float* x, const float* w, const float* bias,
         const float* s0, const float* dy, float* dx, float* dw, float* dbias, float* ds0) {
  const int64_t D = d.D, T = d.T, grain = std::max<int64_t>(1, 16384 / (D * W));
  const std::vector<float> wt = transpose_taps(d, w);
  const Rows r{d, x, s0};
  // dp = dy o silu'(p); without SiLU dp is dy.
  Tensor dp_t = p.silu ? Tensor::empty({d.B, T, D}) : Tensor();
  const float* dp = p.silu ? dp_t.f32() : dy;
  if (p.silu)
    parallel_for(d.B * T, grain, [&](int64_t r0, int64_t r1) {
      float* dpw = dp_t.f32();
      pre_rows<W>(r, wt.data(), bias, r0, r1, dpw, [&](int64_t t0, int64_t t1) {
        dsilu_rows(dpw + t0 * D, dy + t0 * D, (t1 - t0) * D);
      });
    });
  const int64_t lead = ds0 ? W - 1 : 0;
  parallel_for(d.B * (T + lead), grain, [&](int64_t r0, int64_t r1) {
    for (int64_t t0 = r0; t0 < r1; t0 += kTile) {
      const int64_t t1 = std::min(r1, t0 + kTile);
      for_blocks(D, [&]<int L>(int64_t c0) { dx_block<W, L>(d, wt.data(), dp, lead, c0, t0, t1, dx, ds0); });
    }
  });
  if (ds0 && T == 0) std::fill(ds0, ds0 + d.B * (W - 1) * D, 0.0f);
  // One thread per channel block: units [0, full) are blocks of kLanes, the rest single channels.
  const int64_t full = D / kLanes, units = full + D % kLanes;
  const int64_t block_grain = std::max<int64_t>(1, (1 << 18) / std::max<int64_t>(1, d.B * T * kLanes * (W + 1)));
  parallel_for(units, block_grain, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      if (u < full) dw_block<W, kLanes>(r, dp, u * kLanes, dw, dbias);
      else dw_block<W, 1>(r, dp, full * kLanes + u - full, dw, dbias);
    }
  });
}

}  // namespace

void causal_conv1d_fast_fwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const float* x, const float* w,
                            const float* bias, const float* s0, float* y) {
  switch (d.W) {
    case 1: return fwd<1>(p, d, x, w, bias, s0, y);
    case 2: return fwd<2>(p, d, x, w, bias, s0, y);
    case 3: return fwd<3>(p, d, x, w, bias, s0, y);
    case 4: return fwd<4>(p, d, x, w, bias, s0, y);
    case 5: return fwd<5>(p, d, x, w, bias, s0, y);
    case 6: return fwd<6>(p, d, x, w, bias, s0, y);
    case 7: return fwd<7>(p, d, x, w, bias, s0, y);
    case 8: return fwd<8>(p, d, x, w, bias, s0, y);
  }
  SPEEDLM_ASSERT(false, "causal_conv1d: kernel {} outside [1, 8]", d.W);
}

void causal_conv1d_fast_bwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const float* x, const float* w,
                            const float* bias, const float* s0, const float* dy, float* dx, float* dw, float* dbias,
                            float* ds0) {
  switch (d.W) {
    case 1: return bwd<1>(p, d, x, w, bias, s0, dy, dx, dw, dbias, ds0);
    case 2: return bwd<2>(p, d, x, w, bias, s0, dy, dx, dw, dbias, ds0);
    case 3: return bwd<3>(p, d, x, w, bias, s0, dy, dx, dw, dbias, ds0);
    case 4: return bwd<4>(p, d, x, w, bias, s0, dy, dx, dw, dbias, ds0);
    case 5: return bwd<5>(p, d, x, w, bias, s0, dy, dx, dw, dbias, ds0);
    case 6: return bwd<6>(p, d, x, w, bias, s0, dy, dx, dw, dbias, ds0);
    case 7: return bwd<7>(p, d, x, w, bias, s0, dy, dx, dw, dbias, ds0);
    case 8: return bwd<8>(p, d, x, w, bias, s0, dy, dx, dw, dbias, ds0);
  }
  SPEEDLM_ASSERT(false, "causal_conv1d: kernel {} outside [1, 8]", d.W);
}

void causal_conv1d_final_window(const CausalConv1dDims& d, const float* x, const float* s0, float* s_out) {
  const Rows r{d, x, s0};
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t j = 0; j < d.W - 1; ++j) {
      const float* src = r.at(b, d.T - (d.W - 1) + j);
      float* dst = s_out + (b * (d.W - 1) + j) * d.D;
      if (src) std::memmove(dst, src, sizeof(float) * d.D);
      else std::fill(dst, dst + d.D, 0.0f);
    }
}

}  // namespace speedlm::ops
