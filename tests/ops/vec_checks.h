// Helpers the recurrent op tests share (gated_delta_rule, rwkv7, selective_scan): their inputs and
// outputs are plain float vectors.
#pragma once

#include <cmath>
#include <vector>

namespace speedlm::ops::testing {

using Vec = std::vector<float>;

// ||a - ref|| / ||ref||, accumulated in double.
inline double rel(const Vec& a, const Vec& ref) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - ref[i]) * (static_cast<double>(a[i]) - ref[i]);
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num) / (std::sqrt(den) + 1e-30);
}

inline bool finite(const Vec& a) {
  for (float x : a)
    if (!std::isfinite(x)) return false;
  return true;
}

// a then b: the outputs of two calls over consecutive pieces of a sequence.
inline Vec concat(const Vec& a, const Vec& b) {
  Vec r = a;
  r.insert(r.end(), b.begin(), b.end());
  return r;
}

}  // namespace speedlm::ops::testing
