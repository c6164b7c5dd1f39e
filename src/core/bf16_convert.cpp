#include <immintrin.h>

#include "core/parallel.h"
#include "speedlm/tensor.h"

namespace speedlm {

void convert_to_bf16_serial(const float* x, int64_t n, uint16_t* y) {
  int64_t i = 0;
#if defined(__AVX512BF16__)
  // VCVTNE2PS2BF16: round to nearest even, 32 values per instruction.
  for (; i + 32 <= n; i += 32) {
    __m512bh packed = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
    _mm512_storeu_si512(reinterpret_cast<__m512i*>(y + i), reinterpret_cast<__m512i&>(packed));
  }
#endif
  for (; i < n; ++i) y[i] = f32_to_bf16(x[i]);
}

void convert_to_bf16(const float* x, int64_t n, uint16_t* y) {
  parallel_for(n, 1 << 16, [&](int64_t i0, int64_t i1) { convert_to_bf16_serial(x + i0, i1 - i0, y + i0); });
}

}  // namespace speedlm
