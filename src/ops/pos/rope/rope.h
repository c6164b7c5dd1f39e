// Rotary position embedding, half-split pairing (GPT-NeoX / HF Llama "rotate_half"):
// for i in [0, Dh/2): angle = pos * theta^(-2i/Dh),
//   y[i]        = x[i] cos(angle) - x[i + Dh/2] sin(angle)
//   y[i + Dh/2] = x[i] sin(angle) + x[i + Dh/2] cos(angle)
// Backward rotates by -angle. Dh must be even.
//   x, y: [B, T, H, Dh]   pos: [B, T] i32 (absolute positions, >= 0)
// y may alias x (in place); dx may alias dy.
#pragma once

#include <cstdint>

#include "speedlm/tensor.h"

namespace speedlm::ops {

struct RopeParams {
  float theta = 10000.0f;
};

Status rope_check(const RopeParams& p, int64_t head_dim);

template <typename T>
void rope_ref_fwd(const RopeParams& p, const T* x, const int32_t* pos, int64_t B, int64_t T_, int64_t H, int64_t Dh,
                  T* y);
template <typename T>
void rope_ref_bwd(const RopeParams& p, const T* dy, const int32_t* pos, int64_t B, int64_t T_, int64_t H,
                  int64_t Dh, T* dx);

void rope_fast_fwd(const RopeParams& p, const float* x, const int32_t* pos, int64_t B, int64_t T, int64_t H,
                   int64_t Dh, float* y);
void rope_fast_bwd(const RopeParams& p, const float* dy, const int32_t* pos, int64_t B, int64_t T, int64_t H,
                   int64_t Dh, float* dx);
// The same on rows with their own strides: row (b, t) of x starts at x + (b T + t) x_row, so q
// and k are rotated straight out of (and their gradients into) a fused qkv projection.
// x and y may be the same memory only with equal strides.
void rope_fast_fwd_rows(const RopeParams& p, const float* x, int64_t x_row, const int32_t* pos, int64_t B, int64_t T,
                        int64_t H, int64_t Dh, float* y, int64_t y_row);
void rope_fast_bwd_rows(const RopeParams& p, const float* dy, int64_t dy_row, const int32_t* pos, int64_t B,
                        int64_t T, int64_t H, int64_t Dh, float* dx, int64_t dx_row);

}  // namespace speedlm::ops
