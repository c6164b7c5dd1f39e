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

constexpr int64_t kLanes = 16;

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

// Calls fn.template operator()<L>(c) for the channel blocks of [lo, hi): kLanes wide below vec_end
// (where the full blocks of the row end), then one channel at a time.
template <typename Fn>
void for_blocks(int64_t lo, int64_t hi, int64_t vec_end, Fn&& fn) {
  int64_t c = lo;
  for (; c + kLanes <= std::min(hi, vec_end); c += kLanes) fn.template operator()<kLanes>(c);
  for (; c < hi; ++c) fn.template operator()<1>(c);
}

// Pre-activation of channels [c, c+L) of one row: bias + sum_i wt[i] x_i, taps in order; xr[i] is
// the input row of tap i (nullptr for zeros).
template <int W, int L>
typename VecT<L>::type pre_vec(const float* wt, int64_t D, const float* bias, const float* const* xr, int64_t c) {
  typename VecT<L>::type acc{};
  if (bias) acc = load<L>(bias + c);
  for (int i = 0; i < W; ++i)
    if (xr[i]) acc += load<L>(wt + i * D + c) * load<L>(xr[i] + c);
  return acc;
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
  const int64_t D = d.D, vec_end = D / kLanes * kLanes;
  parallel_for(d.B * d.T, std::max<int64_t>(1, 16384 / (D * W)), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / d.T, t = row % d.T;
      const float* xr[W];
      for (int i = 0; i < W; ++i) xr[i] = r.at(b, t - W + 1 + i);
      float* yr = y + row * D;
      for_blocks(0, D, vec_end, [&]<int L>(int64_t c) { store<L>(yr + c, pre_vec<W, L>(wt.data(), D, bias, xr, c)); });
      if (p.silu) silu_rows(yr, D);
    }
  });
}

// One pass over the rows of each sequence per channel range: row t gives dp_t (kept in a ring of
// the last W rows), adds its terms to dw and dbias, and completes dx_{t-W+1}, which needs
// dp_{t-W+1..t}. So x and dy are read once and dp never goes to memory. Threads split the
// channels (every channel sums over (b, t) in order, whatever the split).
template <int W>
void bwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const float* x, const float* w, const float* bias,
         const float* s0, const float* dy, float* dx, float* dw, float* dbias, float* ds0) {
  const int64_t D = d.D, T = d.T, full = D / kLanes, vec_end = full * kLanes, units = full + D % kLanes;
  const std::vector<float> wt = transpose_taps(d, w);
  const Rows r{d, x, s0};
  const auto chan = [&](int64_t u) { return u <= full ? u * kLanes : vec_end + u - full; };
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, d.B * T * kLanes * W));
  parallel_for(units, grain, [&](int64_t u0, int64_t u1) {
    const int64_t lo = chan(u0), hi = chan(u1), n = hi - lo;
    // Per-thread buffers, indexed by channel - lo: the dp ring and the sums of dw (W rows) and dbias.
    std::vector<float> ring(p.silu ? W * n : 0), acc((W + 1) * n, 0.0f);
    for (int64_t b = 0; b < d.B; ++b) {
      const auto dp_row = [&](int64_t t) {
        return p.silu ? ring.data() + (t % W) * n : dy + (b * T + t) * D + lo;
      };
      // dx_s = sum_i wt[i] dp_{s+W-1-i} (dp is zero outside [0, T)); negative s are rows of ds0.
      const auto emit = [&](int64_t s) {
        float* out = s >= 0 ? dx + (b * T + s) * D : ds0 + (b * (W - 1) + s + W - 1) * D;
        for_blocks(lo, hi, vec_end, [&]<int L>(int64_t c) {
          typename VecT<L>::type sum{};
          for (int i = 0; i < W; ++i) {
            const int64_t t = s + W - 1 - i;
            if (t >= 0 && t < T) sum += load<L>(wt.data() + i * D + c) * load<L>(dp_row(t) + c - lo);
          }
          store<L>(out + c, sum);
        });
      };
      for (int64_t t = 0; t < T; ++t) {
        const float* xr[W];
        for (int i = 0; i < W; ++i) xr[i] = r.at(b, t - W + 1 + i);
        if (p.silu) {
          float* pr = ring.data() + (t % W) * n;
          for_blocks(lo, hi, vec_end,
                     [&]<int L>(int64_t c) { store<L>(pr + c - lo, pre_vec<W, L>(wt.data(), D, bias, xr, c)); });
          dsilu_rows(pr, dy + (b * T + t) * D + lo, n);
        }
        const float* g = dp_row(t);
        for_blocks(lo, hi, vec_end, [&]<int L>(int64_t c) {
          const auto gv = load<L>(g + c - lo);
          for (int i = 0; i < W; ++i) {
            if (!xr[i]) continue;
            float* a = acc.data() + i * n + c - lo;
            store<L>(a, load<L>(a) + gv * load<L>(xr[i] + c));
          }
          float* a = acc.data() + W * n + c - lo;
          store<L>(a, load<L>(a) + gv);
        });
        if (t - W + 1 >= 0 || ds0) emit(t - W + 1);
      }
      for (int64_t s = ds0 ? T - W + 1 : std::max<int64_t>(T - W + 1, 0); s < T; ++s) emit(s);
    }
    for (int64_t c = lo; c < hi; ++c) {
      for (int64_t i = 0; i < W; ++i) dw[c * W + i] = acc[i * n + c - lo];
      if (dbias) dbias[c] = acc[W * n + c - lo];
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
