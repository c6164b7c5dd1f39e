#include "ops/nn/embedding/embedding.h"

namespace speedlm::ops {

template <typename T>
void embedding_ref_fwd(const int32_t* ids, int64_t N, const T* weight, int64_t D, T* out) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t d = 0; d < D; ++d) out[n * D + d] = weight[static_cast<int64_t>(ids[n]) * D + d];
}

template <typename T>
void embedding_ref_bwd(const int32_t* ids, int64_t N, const T* d_out, int64_t D, T* d_weight) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t d = 0; d < D; ++d) {
      T& acc = d_weight[static_cast<int64_t>(ids[n]) * D + d];
      acc = static_cast<T>(static_cast<double>(acc) + d_out[n * D + d]);
    }
}

#define SPEEDLM_INSTANTIATE(T)                                                          \
  template void embedding_ref_fwd<T>(const int32_t*, int64_t, const T*, int64_t, T*); \
  template void embedding_ref_bwd<T>(const int32_t*, int64_t, const T*, int64_t, T*);
SPEEDLM_INSTANTIATE(float)
SPEEDLM_INSTANTIATE(double)
#undef SPEEDLM_INSTANTIATE

}  // namespace speedlm::ops
