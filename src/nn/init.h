// Parameter initialisers; each parameter draws from its own counter-based stream,
// so init is reproducible and independent of the order layers are built in.
#pragma once

#include "core/rng.h"
#include "speedlm/tensor.h"

namespace speedlm::nn {

void init_normal(Tensor& t, double std, uint64_t seed, uint64_t stream);

}  // namespace speedlm::nn
