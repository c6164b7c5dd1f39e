// Vectorisable helpers shared by the f32 attention forms.
#pragma once

#include <algorithm>

#include "core/simd_math.h"

namespace speedlm::ops {

// tanh(x), relative error ~1e-7: an odd minimax polynomial for |x| < 0.625 (Cephes tanhf's
// coefficients), 1 - 2 / (e^{2|x|} + 1) above, where no cancellation is left. |x| is clamped at 9,
// where tanh is 1 in f32, so e^{2|x|} never overflows.
inline float tanh_f32(float x) {
  const float a = std::min(x < 0.0f ? -x : x, 9.0f), z = x * x;
  float poly = -5.70498872745e-3f;
  poly = poly * z + 2.06390887954e-2f;
  poly = poly * z - 5.37397155531e-2f;
  poly = poly * z + 1.33314422036e-1f;
  poly = poly * z - 3.33332819422e-1f;
  poly = poly * z * x + x;
  float big = 1.0f - 2.0f / (exp_f32(2.0f * a) + 1.0f);
  big = x < 0.0f ? -big : big;
  return a < 0.625f ? poly : big;
}

}  // namespace speedlm::ops
