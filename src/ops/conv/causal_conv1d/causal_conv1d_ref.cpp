// Reference causal depthwise conv1d: plain loops, accumulators in T (double = the spec).
#include <cmath>
#include <utility>
#include <vector>

#include "ops/conv/causal_conv1d/causal_conv1d.h"

namespace speedlm::ops {

Status causal_conv1d_check(const CausalConv1dParams&, const CausalConv1dDims& d) {
  const std::pair<const char*, int64_t> dims[] = {{"batch", d.B}, {"channels", d.D}};
  for (const auto& [name, value] : dims)
    if (value < 1) return Status::errorf("causal_conv1d", "{} = {}: must be >= 1", name, value);
  if (d.T < 0) return Status::errorf("causal_conv1d", "T = {}: must be >= 0", d.T);
  if (d.W < 1 || d.W > 8) return Status::errorf("causal_conv1d", "kernel = {}: must be in [1, 8]", d.W);
  return Status::ok();
}

namespace {
// x at position t (may be negative: read from s0) of batch b, channel c.
template <typename T>
T x_at(const CausalConv1dDims& d, const T* x, const T* s0, int64_t b, int64_t t, int64_t c) {
  if (t >= 0) return x[(b * d.T + t) * d.D + c];
  return s0 ? s0[(b * (d.W - 1) + t + d.W - 1) * d.D + c] : T(0);
}
}  // namespace

template <typename T>
void causal_conv1d_ref_fwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const T* x, const T* w,
                           const T* bias, const T* s0, T* y) {
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t t = 0; t < d.T; ++t)
      for (int64_t c = 0; c < d.D; ++c) {
        T acc = bias ? bias[c] : T(0);
        for (int64_t i = 0; i < d.W; ++i) acc += w[c * d.W + i] * x_at(d, x, s0, b, t - d.W + 1 + i, c);
        y[(b * d.T + t) * d.D + c] = p.silu ? acc / (T(1) + std::exp(-acc)) : acc;
      }
}

template <typename T>
void causal_conv1d_ref_bwd(const CausalConv1dParams& p, const CausalConv1dDims& d, const T* x, const T* w,
                           const T* bias, const T* s0, const T* dy, T* dx, T* dw, T* dbias, T* ds0) {
  const int64_t W = d.W, D = d.D;
  for (int64_t i = 0; i < D * W; ++i) dw[i] = T(0);
  if (dbias)
    for (int64_t c = 0; c < D; ++c) dbias[c] = T(0);
  for (int64_t i = 0; i < d.B * d.T * D; ++i) dx[i] = T(0);
  if (ds0)
    for (int64_t i = 0; i < d.B * (W - 1) * D; ++i) ds0[i] = T(0);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t t = 0; t < d.T; ++t)
      for (int64_t c = 0; c < D; ++c) {
        T pre = bias ? bias[c] : T(0);
        for (int64_t i = 0; i < W; ++i) pre += w[c * W + i] * x_at(d, x, s0, b, t - W + 1 + i, c);
        T dp = dy[(b * d.T + t) * D + c];
        if (p.silu) {
          T s = T(1) / (T(1) + std::exp(-pre));
          dp *= s * (T(1) + pre * (T(1) - s));
        }
        if (dbias) dbias[c] += dp;
        for (int64_t i = 0; i < W; ++i) {
          const int64_t src = t - W + 1 + i;
          dw[c * W + i] += dp * x_at(d, x, s0, b, src, c);
          if (src >= 0) dx[(b * d.T + src) * D + c] += w[c * W + i] * dp;
          else if (ds0) ds0[(b * (W - 1) + src + W - 1) * D + c] += w[c * W + i] * dp;
        }
      }
}

template void causal_conv1d_ref_fwd<double>(const CausalConv1dParams&, const CausalConv1dDims&, const double*,
                                            const double*, const double*, const double*, double*);
template void causal_conv1d_ref_bwd<double>(const CausalConv1dParams&, const CausalConv1dDims&, const double*,
                                            const double*, const double*, const double*, const double*, double*,
                                            double*, double*, double*);

}  // namespace speedlm::ops
