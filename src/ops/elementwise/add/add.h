// Elementwise add (residual connections): y = a + b, all [N]. Backward: da = db = dy.
// y may alias a or b.
#pragma once

#include <cstdint>

namespace speedlm::ops {

template <typename T>
void add_ref_fwd(const T* a, const T* b, int64_t N, T* y);

void add_fast_fwd(const float* a, const float* b, int64_t N, float* y);
// Accumulating form used by the autograd tape: y += x.
void add_fast_inplace(float* y, const float* x, int64_t N);

}  // namespace speedlm::ops
