#include "ops/elementwise/add/add.h"

namespace speedlm::ops {

template <typename T>
void add_ref_fwd(const T* a, const T* b, int64_t N, T* y) {
  for (int64_t i = 0; i < N; ++i) y[i] = static_cast<T>(static_cast<double>(a[i]) + static_cast<double>(b[i]));
}

template void add_ref_fwd<float>(const float*, const float*, int64_t, float*);
template void add_ref_fwd<double>(const double*, const double*, int64_t, double*);

}  // namespace speedlm::ops
