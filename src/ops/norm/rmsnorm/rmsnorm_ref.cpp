#include <cmath>
#include <vector>

#include "ops/norm/rmsnorm/rmsnorm.h"

namespace speedlm::ops {

namespace {
template <typename T>
double row_rstd(const RmsNormParams& p, const T* x, int64_t D) {
  double ss = 0.0;
  for (int64_t d = 0; d < D; ++d) ss += static_cast<double>(x[d]) * x[d];
  return 1.0 / std::sqrt(ss / D + p.eps);
}
}  // namespace

template <typename T>
void rmsnorm_ref_fwd(const RmsNormParams& p, const T* x, const T* w, int64_t N, int64_t D, T* y, T* rstd) {
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * D;
    double r = row_rstd(p, xr, D);
    rstd[n] = static_cast<T>(r);
    for (int64_t d = 0; d < D; ++d) y[n * D + d] = static_cast<T>(xr[d] * r * w[d]);
  }
}

template <typename T>
void rmsnorm_ref_bwd(const RmsNormParams& p, const T* x, const T* w, const T* dy, int64_t N, int64_t D, T* dx,
                     T* dw) {
  std::vector<double> dw_acc(static_cast<size_t>(D), 0.0);
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * D;
    const T* g = dy + n * D;
    double r = row_rstd(p, xr, D);
    double dot = 0.0;  // sum_d dy * w * x
    for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(g[d]) * w[d] * xr[d];
    double m = dot / D;
    for (int64_t d = 0; d < D; ++d) {
      dx[n * D + d] = static_cast<T>(r * (static_cast<double>(g[d]) * w[d] - xr[d] * r * r * m));
      dw_acc[d] += static_cast<double>(g[d]) * xr[d] * r;
    }
  }
  for (int64_t d = 0; d < D; ++d) dw[d] = static_cast<T>(dw[d] + dw_acc[d]);
}

#define SPEEDLM_INSTANTIATE(T)                                                                                  \
  template void rmsnorm_ref_fwd<T>(const RmsNormParams&, const T*, const T*, int64_t, int64_t, T*, T*);         \
  template void rmsnorm_ref_bwd<T>(const RmsNormParams&, const T*, const T*, const T*, int64_t, int64_t, T*, T*);
SPEEDLM_INSTANTIATE(float)
SPEEDLM_INSTANTIATE(double)
#undef SPEEDLM_INSTANTIATE

}  // namespace speedlm::ops
