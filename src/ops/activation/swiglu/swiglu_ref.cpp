#include <cmath>

#include "ops/activation/swiglu/swiglu.h"

namespace speedlm::ops {

namespace {
// sigmoid from exp of a non-positive argument only: no overflow.
double sigmoid(double g) {
  if (g >= 0.0) return 1.0 / (1.0 + std::exp(-g));
  double e = std::exp(g);
  return e / (1.0 + e);
}
}  // namespace

template <typename T>
void swiglu_ref_fwd(const T* gu, int64_t N, int64_t F, T* h) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < F; ++i) {
      double g = gu[n * 2 * F + i], u = gu[n * 2 * F + F + i];
      h[n * F + i] = static_cast<T>(g * sigmoid(g) * u);
    }
}

template <typename T>
void swiglu_ref_bwd(const T* gu, const T* dh, int64_t N, int64_t F, T* dgu) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < F; ++i) {
      double g = gu[n * 2 * F + i], u = gu[n * 2 * F + F + i], d = dh[n * F + i];
      double s = sigmoid(g);
      dgu[n * 2 * F + i] = static_cast<T>(d * u * s * (1.0 + g * (1.0 - s)));
      dgu[n * 2 * F + F + i] = static_cast<T>(d * g * s);
    }
}

#define SPEEDLM_INSTANTIATE(T)                                               \
  template void swiglu_ref_fwd<T>(const T*, int64_t, int64_t, T*);           \
  template void swiglu_ref_bwd<T>(const T*, const T*, int64_t, int64_t, T*);
SPEEDLM_INSTANTIATE(float)
SPEEDLM_INSTANTIATE(double)
#undef SPEEDLM_INSTANTIATE

}  // namespace speedlm::ops
