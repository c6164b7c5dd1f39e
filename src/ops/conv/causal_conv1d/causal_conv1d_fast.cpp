// Fast causal depthwise conv1d: rows threaded over (b, t), channels vectorised (the taps are
// transposed to [W, D] so each tap is a contiguous row). The weight gradient is reduced per
// channel block by one thread each, so it is deterministic.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "core/simd_math.h"
#include "ops/conv/causal_conv1d/causal_conv1d.h"
#include "speedlm/tensor.h"

namespace speedlm::ops {

namespace {

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

// pre[c] = bias[c] + sum_i wt[i, c] x_{t-W+1+i}[c]
void pre_activation(const Rows& r, const float* wt, const float* bias, int64_t b, int64_t t, float* pre) {
  const int64_t D = r.d.D;
  if (bias) std::memcpy(pre, bias, sizeof(float) * D);
  else std::fill(pre, pre + D, 0.0f);
  for (int64_t i = 0; i < r.d.W; ++i) {
    const float* xr = r.at(b, t - r.d.W + 1 + i);
    if (!xr) continue;
    const float* wi = wt + i * D;
#pragma omp simd
    for (int64_t c = 0; c < D; ++c) pre[c] += wi[c] * xr[c];
  }
}

}  // namespace

void causal_conv1d_fast_fwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const float* x, const float* w,
                            const float* bias, const float* s0, float* y) {
  const std::vector<float> wt = transpose_taps(d, w);
  const Rows r{d, x, s0};
  parallel_for(d.B * d.T, std::max<int64_t>(1, 16384 / (d.D * d.W)), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      float* yr = y + row * d.D;
      pre_activation(r, wt.data(), bias, row / d.T, row % d.T, yr);
      if (!p.silu) continue;
#pragma omp simd
      for (int64_t c = 0; c < d.D; ++c) yr[c] *= sigmoid_f32(yr[c]);
    }
  });
}

void causal_conv1d_fast_bwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const float* x, const float* w,
                            const float* bias, const float* s0, const float* dy, float* dx, float* dw, float* dbias,
                            float* ds0) {
  const int64_t D = d.D, W = d.W, T = d.T, grain = std::max<int64_t>(1, 16384 / (D * W));
  const std::vector<float> wt = transpose_taps(d, w);
  const Rows r{d, x, s0};
  // dp = dy o silu'(p), silu'(p) = s (1 + p (1 - s)).
  Tensor dp_t = Tensor::empty({d.B, T, D});
  float* dp = dp_t.f32();
  parallel_for(d.B * T, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      float* dpr = dp + row * D;
      const float* dyr = dy + row * D;
      if (!p.silu) {
        std::memcpy(dpr, dyr, sizeof(float) * D);
        continue;
      }
      pre_activation(r, wt.data(), bias, row / T, row % T, dpr);
#pragma omp simd
      for (int64_t c = 0; c < D; ++c) {
        const float s = sigmoid_f32(dpr[c]);
        dpr[c] = dyr[c] * s * (1.0f + dpr[c] * (1.0f - s));
      }
    }
  });
  // dx_s = sum_i wt[i] o dp_{s+W-1-i}, for s in [-(W-1), T): negative s are the rows of ds0.
  const int64_t lead = ds0 ? W - 1 : 0;
  parallel_for(d.B * (T + lead), grain, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / (T + lead), s = row % (T + lead) - lead;
      float* out = s >= 0 ? dx + (b * T + s) * D : ds0 + (b * (W - 1) + s + W - 1) * D;
      std::fill(out, out + D, 0.0f);
      for (int64_t i = 0; i < W; ++i) {
        const int64_t t = s + W - 1 - i;
        if (t < 0 || t >= T) continue;
        const float *wi = wt.data() + i * D, *dpr = dp + (b * T + t) * D;
#pragma omp simd
        for (int64_t c = 0; c < D; ++c) out[c] += wi[c] * dpr[c];
      }
    }
  });
  if (ds0 && T == 0) std::fill(ds0, ds0 + d.B * (W - 1) * D, 0.0f);
  // dw[c, i] = sum_t dp_t[c] x_{t-W+1+i}[c], dbias = sum_t dp_t: one thread per channel block.
  constexpr int64_t kBlock = 64;
  const int64_t block_grain = std::max<int64_t>(1, (1 << 18) / std::max<int64_t>(1, d.B * T * kBlock * (W + 1)));
  parallel_for((D + kBlock - 1) / kBlock, block_grain, [&](int64_t c0, int64_t c1) {
    std::vector<float> acc(static_cast<size_t>((W + 1) * kBlock));
    for (int64_t blk = c0; blk < c1; ++blk) {
      const int64_t lo = blk * kBlock, n = std::min(kBlock, D - lo);
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t b = 0; b < d.B; ++b)
        for (int64_t t = 0; t < T; ++t) {
          const float* dpr = dp + (b * T + t) * D + lo;
          for (int64_t i = 0; i < W; ++i) {
            const float* xr = r.at(b, t - W + 1 + i);
            if (!xr) continue;
            float* a = acc.data() + i * kBlock;
#pragma omp simd
            for (int64_t c = 0; c < n; ++c) a[c] += dpr[c] * xr[lo + c];
          }
          float* a = acc.data() + W * kBlock;
#pragma omp simd
          for (int64_t c = 0; c < n; ++c) a[c] += dpr[c];
        }
      for (int64_t c = 0; c < n; ++c) {
        for (int64_t i = 0; i < W; ++i) dw[(lo + c) * W + i] = acc[i * kBlock + c];
        if (dbias) dbias[lo + c] = acc[W * kBlock + c];
      }
    }
  });
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
