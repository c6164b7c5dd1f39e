// A tensor of N(0, std^2) entries from a seeded stream, for op tests that take Tensor inputs.
#pragma once

#include <utility>

#include "core/rng.h"
#include "speedlm/tensor.h"

namespace speedlm::ops::testing {

inline Tensor random_tensor(Shape s, double std, uint64_t seed) {
  Tensor t = Tensor::empty(std::move(s));
  Rng rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = static_cast<float>(std * rng.normal());
  return t;
}

}  // namespace speedlm::ops::testing
