// Decode form of GLA: the token recurrence in f32 with the state updated in place.
#include <cmath>

#include "ops/linear/common/chunk_engine.h"
#include "ops/linear/gla/gla.h"

namespace speedlm::ops {

void gla_step_fwd(const GlaParams& p, const GlaDims& d, const float* q, const float* k,
                         const float* v, const float* g, float* state, float* o) {
  float scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(d.K));
  linear_chunk::recurrent_step({d.B, d.T, d.H, d.K, d.V, p.chunk, d.K, scale}, q, k, v, g, state, o);
}

}  // namespace speedlm::ops
