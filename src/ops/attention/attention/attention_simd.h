// Vectorisable helpers shared by the f32 attention forms.
#pragma once

#include <algorithm>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

#if defined(__AVX512F__)
// 16-lane helpers in GCC vector arithmetic on __m512: GCC 12's intrinsics for max, rounding,
// conversions and reductions start from _mm512_undefined_*, which -Wmaybe-uninitialized flags.
using V16i = int32_t __attribute__((vector_size(64)));

inline __m512 splat16(float x) { return _mm512_set1_ps(x); }
inline __m512 max16(__m512 a, __m512 b) { return a > b ? a : b; }
inline float reduce16(__m512 x, bool max) {
  const V16i halves[] = {{8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7},
                         {4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11},
                         {2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13},
                         {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14}};
  for (const V16i& h : halves) {
    const __m512 y = __builtin_shuffle(x, h);
    x = max ? max16(x, y) : x + y;
  }
  return x[0];
}

// exp_f32 on 16 lanes, the same steps and constants: GCC vectorises the scalar one 8 lanes wide
// (its default preferred width on this CPU), which halves the softmax throughput of a tile row.
inline __m512 exp_f32x16(__m512 x) {
  const __m512 round = splat16(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  x = max16(x, splat16(-87.3f));
  const __m512 t = _mm512_fmadd_ps(x, splat16(1.44269504088896341f), round);
  const __m512 n = t - round;
  __m512 r = _mm512_fmadd_ps(n, splat16(-0.693359375f), x);
  r = _mm512_fmadd_ps(n, splat16(2.12194440e-4f), r);
  __m512 p = splat16(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, splat16(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, splat16(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, splat16(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, splat16(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, splat16(5.0000001201e-1f));
  const __m512 er = _mm512_fmadd_ps(p, r * r, r) + splat16(1.0f);
  // n as an integer: the low mantissa bits of t hold it (|n| < 2^22); 2^n goes into the exponent.
  const V16i e = (((V16i)t - (V16i)round) + 127) << 23;
  return er * (__m512)e;
}
#endif

// A full 64-key row of the forward: s = exp(s - m) in place with m = max(m_old, max s);
// returns the new max and adds the row sum to *sum.
inline float softmax_row64(float* s, float m_old, float* sum) {
#if defined(__AVX512F__)
  __m512 x[4];
  for (int v = 0; v < 4; ++v) x[v] = _mm512_loadu_ps(s + 16 * v);
  const float m = std::max(m_old, reduce16(max16(max16(x[0], x[1]), max16(x[2], x[3])), true));
  const __m512 mv = splat16(m);
  __m512 acc = _mm512_setzero_ps();
  for (int v = 0; v < 4; ++v) {
    x[v] = exp_f32x16(x[v] - mv);
    _mm512_storeu_ps(s + 16 * v, x[v]);
    acc += x[v];
  }
  *sum += reduce16(acc, false);
  return m;
#else
  float m = m_old, total = 0.0f;
  for (int j = 0; j < 64; ++j) m = std::max(m, s[j]);
  for (int j = 0; j < 64; ++j) {
    s[j] = exp_f32(s[j] - m);
    total += s[j];
  }
  *sum += total;
  return m;
#endif
}

// A full 64-key row of the backward: p = exp(s - l) in place, ds = p * (dp - D) in place of dp.
inline void softmax_grad_row64(float* s, float* dp, float l, float D) {
#if defined(__AVX512F__)
  const __m512 lv = splat16(l), Dv = splat16(D);
  for (int v = 0; v < 4; ++v) {
    const __m512 p = exp_f32x16(_mm512_loadu_ps(s + 16 * v) - lv);
    _mm512_storeu_ps(s + 16 * v, p);
    _mm512_storeu_ps(dp + 16 * v, p * (_mm512_loadu_ps(dp + 16 * v) - Dv));
  }
#else
  for (int j = 0; j < 64; ++j) {
    s[j] = exp_f32(s[j] - l);
    dp[j] = s[j] * (dp[j] - D);
  }
#endif
}

}  // namespace speedlm::ops
