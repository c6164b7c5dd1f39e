#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "ops/pos/rope/rope.h"

namespace speedlm::ops {

namespace {

// A token's work is H * Dh elements plus Dh/2 angles; 64K elements per thread is ~30 us.
constexpr int64_t kGrainElems = 65536;
// Frequencies handled per step: their cos/sin live in stack arrays shared by all heads.
constexpr int64_t kBlock = 64;

// c[i] = cos(a_i), s[i] = sign * sin(a_i) for a_i = pos * inv_freq[i], i < n. Angles reach
// ~1e5 rad and more, beyond what f32 can reduce, so the reduction modulo pi/2 runs in double
// (Cody-Waite with FMA: error ~1e-16 * a); the Cephes sinf/cosf polynomials then evaluate the
// remainder |r| <= pi/4 in f32 (absolute error ~1e-7). Plain code so the loop vectorises.
void sincos_block(double pos, const double* inv_freq, int64_t n, float sign, float* c, float* s) {
  constexpr double k2OverPi = 0.63661977236758134308, kRound = 6755399441055744.0;  // 1.5 * 2^52
  constexpr double kPio2Hi = 1.5707963267948966, kPio2Lo = 6.123233995736766e-17;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    double a = pos * inv_freq[i];
    double q = (a * k2OverPi + kRound) - kRound;  // nearest multiple of pi/2
    double rd = std::fma(-q, kPio2Hi, a);
    rd = std::fma(-q, kPio2Lo, rd);
    float r = static_cast<float>(rd), z = r * r;
    float sn = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * r + r;
    float cs = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
               0.5f * z + 1.0f;
    // a = q pi/2 + r: quadrant 1 swaps sin/cos, quadrants 2 and 3 flip signs.
    int64_t quadrant = static_cast<int64_t>(q) & 3;
    float sin_a = (quadrant & 1) ? cs : sn, cos_a = (quadrant & 1) ? sn : cs;
    sin_a = (quadrant & 2) ? -sin_a : sin_a;
    cos_a = ((quadrant + 1) & 2) ? -cos_a : cos_a;
    c[i] = cos_a;
    s[i] = sign * sin_a;
  }
}

// theta^(-2i/Dh) in double, recomputed only when (theta, Dh) change on the calling thread.
const double* inv_freqs(float theta, int64_t Dh) {
  thread_local float cached_theta = 0.0f;
  thread_local int64_t cached_dh = 0;
  thread_local std::vector<double> freqs;
  if (theta != cached_theta || Dh != cached_dh) {
    freqs.resize(static_cast<size_t>(Dh / 2));
    for (int64_t i = 0; i < Dh / 2; ++i)
      freqs[i] = std::pow(static_cast<double>(theta), -2.0 * static_cast<double>(i) / static_cast<double>(Dh));
    cached_theta = theta;
    cached_dh = Dh;
  }
  return freqs.data();
}

// x and y rows (one per (b, t)) start x_row and y_row floats apart.
void rope_fast_rotate(const RopeParams& p, const float* x, int64_t x_row, const int32_t* pos, int64_t B, int64_t T,
                      int64_t H, int64_t Dh, float sign, float* y, int64_t y_row) {
  const int64_t half = Dh / 2;
  const double* inv_freq = inv_freqs(p.theta, Dh);
  parallel_for(B * T, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, H * Dh)), [&](int64_t t0, int64_t t1) {
    alignas(64) float c[kBlock], s[kBlock];
    for (int64_t bt = t0; bt < t1; ++bt)
      for (int64_t i0 = 0; i0 < half; i0 += kBlock) {
        int64_t nb = std::min(kBlock, half - i0);
        sincos_block(static_cast<double>(pos[bt]), inv_freq + i0, nb, sign, c, s);
        for (int64_t h = 0; h < H; ++h) {
          const float* xr = x + bt * x_row + h * Dh + i0;
          float* yr = y + bt * y_row + h * Dh + i0;
          // Both values of a pair are read before either is written: y may alias x.
#pragma omp simd
          for (int64_t i = 0; i < nb; ++i) {
            float x1 = xr[i], x2 = xr[i + half];
            yr[i] = x1 * c[i] - x2 * s[i];
            yr[i + half] = x1 * s[i] + x2 * c[i];
          }
        }
      }
  });
}

}  // namespace

void rope_fast_fwd(const RopeParams& p, const float* x, const int32_t* pos, int64_t B, int64_t T, int64_t H,
                   int64_t Dh, float* y) {
  rope_fast_rotate(p, x, H * Dh, pos, B, T, H, Dh, 1.0f, y, H * Dh);
}

void rope_fast_bwd(const RopeParams& p, const float* dy, const int32_t* pos, int64_t B, int64_t T, int64_t H,
                   int64_t Dh, float* dx) {
  rope_fast_rotate(p, dy, H * Dh, pos, B, T, H, Dh, -1.0f, dx, H * Dh);
}

void rope_fast_fwd_rows(const RopeParams& p, const float* x, int64_t x_row, const int32_t* pos, int64_t B, int64_t T,
                        int64_t H, int64_t Dh, float* y, int64_t y_row) {
  rope_fast_rotate(p, x, x_row, pos, B, T, H, Dh, 1.0f, y, y_row);
}

void rope_fast_bwd_rows(const RopeParams& p, const float* dy, int64_t dy_row, const int32_t* pos, int64_t B,
                        int64_t T, int64_t H, int64_t Dh, float* dx, int64_t dx_row) {
  rope_fast_rotate(p, dy, dy_row, pos, B, T, H, Dh, -1.0f, dx, dx_row);
}

}  // namespace speedlm::ops
