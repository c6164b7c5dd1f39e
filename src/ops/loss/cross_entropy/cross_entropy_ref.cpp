#include <algorithm>
#include <cmath>

#include "ops/loss/cross_entropy/cross_entropy.h"

namespace speedlm::ops {

namespace {
// Row max m and l = log(sum_j exp(z_j - m)), so lse = m + l without overflow.
template <typename T>
void row_max_log_sum(const T* z, int64_t V, double& m, double& l) {
  m = -INFINITY;
  for (int64_t j = 0; j < V; ++j) m = std::max(m, static_cast<double>(z[j]));
  double s = 0.0;
  for (int64_t j = 0; j < V; ++j) s += std::exp(z[j] - m);
  l = std::log(s);
}
}  // namespace

template <typename T>
void cross_entropy_ref_fwd(const CrossEntropyParams& p, const T* logits, const int32_t* targets, int64_t N,
                           int64_t V, T* loss, T* lse) {
  for (int64_t n = 0; n < N; ++n) {
    const T* z = logits + n * V;
    double m, l;
    row_max_log_sum(z, V, m, l);
    lse[n] = static_cast<T>(m + l);
    // (m - z_t) + l rather than lse - z_t: no cancellation when the target is the max.
    loss[n] = targets[n] == p.ignore_index ? T(0) : static_cast<T>((m - z[targets[n]]) + l);
  }
}

template <typename T>
void cross_entropy_ref_bwd(const CrossEntropyParams& p, const T* logits, const int32_t* targets, const T* d_loss,
                           int64_t N, int64_t V, T* d_logits) {
  for (int64_t n = 0; n < N; ++n) {
    const T* z = logits + n * V;
    T* d = d_logits + n * V;
    if (targets[n] == p.ignore_index) {
      std::fill(d, d + V, T(0));
      continue;
    }
    double m, l;
    row_max_log_sum(z, V, m, l);
    double g = d_loss[n];
    // Each z[j] is read before d[j] is written: d_logits may alias logits.
    for (int64_t j = 0; j < V; ++j) d[j] = static_cast<T>(g * (std::exp(z[j] - m - l) - (j == targets[n] ? 1.0 : 0.0)));
  }
}

#define SPEEDLM_INSTANTIATE(T)                                                                                     \
  template void cross_entropy_ref_fwd<T>(const CrossEntropyParams&, const T*, const int32_t*, int64_t, int64_t, T*, \
                                         T*);                                                                      \
  template void cross_entropy_ref_bwd<T>(const CrossEntropyParams&, const T*, const int32_t*, const T*, int64_t,   \
                                         int64_t, T*);
SPEEDLM_INSTANTIATE(float)
SPEEDLM_INSTANTIATE(double)
#undef SPEEDLM_INSTANTIATE

}  // namespace speedlm::ops
