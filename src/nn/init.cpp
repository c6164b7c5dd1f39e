#include "nn/init.h"

namespace speedlm::nn {

void init_normal(Tensor& t, double std, uint64_t seed, uint64_t stream) {
  Rng rng(seed, stream);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(std * rng.normal());
}

}  // namespace speedlm::nn
