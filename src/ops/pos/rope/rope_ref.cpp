#include <cmath>

#include "ops/pos/rope/rope.h"

namespace speedlm::ops {

namespace {

// Rotates each (i, i + Dh/2) pair of every head by sign * angle, angle = pos * theta^(-2i/Dh),
// all in double. Reads both values of a pair before writing, so y may alias x.
template <typename T>
void rope_ref_rotate(const RopeParams& p, const T* x, const int32_t* pos, int64_t B, int64_t T_, int64_t H,
                     int64_t Dh, double sign, T* y) {
  int64_t half = Dh / 2;
  for (int64_t bt = 0; bt < B * T_; ++bt)
    for (int64_t i = 0; i < half; ++i) {
      double angle = pos[bt] * std::pow(static_cast<double>(p.theta), -2.0 * static_cast<double>(i) / Dh);
      double c = std::cos(angle), s = sign * std::sin(angle);
      for (int64_t h = 0; h < H; ++h) {
        int64_t o = (bt * H + h) * Dh + i;
        double x1 = x[o], x2 = x[o + half];
        y[o] = static_cast<T>(x1 * c - x2 * s);
        y[o + half] = static_cast<T>(x1 * s + x2 * c);
      }
    }
}

}  // namespace

template <typename T>
void rope_ref_fwd(const RopeParams& p, const T* x, const int32_t* pos, int64_t B, int64_t T_, int64_t H, int64_t Dh,
                  T* y) {
  rope_ref_rotate(p, x, pos, B, T_, H, Dh, 1.0, y);
}

template <typename T>
void rope_ref_bwd(const RopeParams& p, const T* dy, const int32_t* pos, int64_t B, int64_t T_, int64_t H,
                  int64_t Dh, T* dx) {
  rope_ref_rotate(p, dy, pos, B, T_, H, Dh, -1.0, dx);
}

#define SPEEDLM_INSTANTIATE(T)                                                                                \
  template void rope_ref_fwd<T>(const RopeParams&, const T*, const int32_t*, int64_t, int64_t, int64_t, int64_t, \
                                T*);                                                                          \
  template void rope_ref_bwd<T>(const RopeParams&, const T*, const int32_t*, int64_t, int64_t, int64_t, int64_t, \
                                T*);
SPEEDLM_INSTANTIATE(float)
SPEEDLM_INSTANTIATE(double)
#undef SPEEDLM_INSTANTIATE

}  // namespace speedlm::ops
