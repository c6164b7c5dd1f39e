// Fast paged decode, f32 arithmetic on f32 / bf16 / int8 pages read in place.
// Work item = (sequence b, kv head, piece of the sequence's pages). The G = H / KVH query heads
// of a kv head are processed together, so each key and value row is read from memory once per
// step (decode is bandwidth-bound). Within a piece: online softmax page by page (scores of the
// page's tokens for all G heads, rescale by exp(m_old - m_new), accumulate p * v); int8 scales
// are folded into the score and into p. Pieces write (m, l, acc) partials that are merged by
// log-sum-exp (README.md, "Split-KV"); a single piece goes through the same merge.
// The two page kernels (scores, value accumulation) have AVX-512 forms for Dh % 16 == 0 that
// convert bf16 / int8 lanes in registers; portable loops cover the rest.
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include <immintrin.h>

#include "core/parallel.h"
#include "core/simd_math.h"
#include "ops/attention/paged_decode/paged_decode.h"

namespace speedlm::ops {

namespace {

// Shortest piece worth a thread of its own: 256 tokens of one kv head is >= 32 KiB of f32 K+V
// at Dh = 16, tens of microseconds of reads at 27 GB/s (DESIGN.md "Threads").
constexpr int64_t kMinSplitTokens = 256;

inline float to_f32(float x) { return x; }
inline float to_f32(uint16_t x) { return std::bit_cast<float>(static_cast<uint32_t>(x) << 16); }
inline float to_f32(int8_t x) { return static_cast<float>(x); }

#if defined(__AVX512F__)
// 16 stored values as f32 lanes. The all-ones masked (maskz) forms: GCC 12's unmasked ones start
// from an undefined register and trip -Wmaybe-uninitialized.
constexpr __mmask16 kAll = 0xFFFF;
inline __m512 load16(const float* x) { return _mm512_loadu_ps(x); }
inline __m512 load16(const uint16_t* x) {
  const __m512i u = _mm512_maskz_cvtepu16_epi32(kAll, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(kAll, u, 16));
}
inline __m512 load16(const int8_t* x) {
  const __m512i i = _mm512_maskz_cvtepi8_epi32(kAll, _mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
  return _mm512_maskz_cvtepi32_ps(kAll, i);
}
inline float sum16(__m512 a) {
  const __m256 h = _mm256_add_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, _mm512_castps_pd(a), 0)),
                                 _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, _mm512_castps_pd(a), 1)));
  const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  const __m128 p = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(p, _mm_movehdup_ps(p)));
}

// The 16 horizontal sums of a[0..15] in one register: lane i = sum(a[4 (i % 4) + i / 4]) (two
// levels of 128-bit shuffles, two of in-lane shuffles; 15 adds for 16 reductions).
inline __m512 sum16x16(const __m512* a) {
  __m512 b[8], c[4];
  for (int i = 0; i < 8; ++i)
    b[i] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll, a[2 * i], a[2 * i + 1], 0x44),
                         _mm512_maskz_shuffle_f32x4(kAll, a[2 * i], a[2 * i + 1], 0xEE));
  for (int i = 0; i < 4; ++i)
    c[i] = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll, b[2 * i], b[2 * i + 1], 0x88),
                         _mm512_maskz_shuffle_f32x4(kAll, b[2 * i], b[2 * i + 1], 0xDD));
  const __m512 d0 = _mm512_add_ps(_mm512_shuffle_ps(c[0], c[1], 0x44), _mm512_shuffle_ps(c[0], c[1], 0xEE));
  const __m512 d1 = _mm512_add_ps(_mm512_shuffle_ps(c[2], c[3], 0x44), _mm512_shuffle_ps(c[2], c[3], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_ps(d0, d1, 0x88), _mm512_shuffle_ps(d0, d1, 0xDD));
}

// s[g * P + t] = sc_t * q_g . k_t for the page's n tokens. Tiles of 4 tokens x 4 heads keep 16
// accumulators in registers (each k conversion feeds four FMAs, each q load four) and reduce
// them together; leftover tokens or heads take one key row and up to four heads at a time.
// Dh % 16 == 0.
template <typename S>
void scores_avx512(const float* q, const S* k, int64_t G, int64_t n, int64_t Dh, int64_t P, float scale,
                   const float* ks, float* s) {
  const int64_t n4 = n / 4 * 4, G4 = G / 4 * 4;
  for (int64_t t0 = 0; t0 < n4; t0 += 4)
    for (int64_t g0 = 0; g0 < G4; g0 += 4) {
      // Slot 4 (i % 4) + i / 4 accumulates pair i = 4 tt + gg, so lane i of the reduction is pair i.
      __m512 a[16];
      for (auto& x : a) x = _mm512_setzero_ps();
      for (int64_t c = 0; c < Dh; c += 16) {
        __m512 qv[4];
        for (int64_t gg = 0; gg < 4; ++gg) qv[gg] = _mm512_loadu_ps(q + (g0 + gg) * Dh + c);
        for (int64_t tt = 0; tt < 4; ++tt) {
          const __m512 kv = load16(k + (t0 + tt) * Dh + c);
          for (int64_t gg = 0; gg < 4; ++gg) a[4 * gg + tt] = _mm512_fmadd_ps(qv[gg], kv, a[4 * gg + tt]);
        }
      }
      alignas(64) float out[16];
      _mm512_store_ps(out, sum16x16(a));
      for (int64_t tt = 0; tt < 4; ++tt) {
        const float st = ks ? scale * ks[t0 + tt] : scale;
        for (int64_t gg = 0; gg < 4; ++gg) s[(g0 + gg) * P + t0 + tt] = st * out[4 * tt + gg];
      }
    }
  for (int64_t t = 0; t < n; ++t) {
    const S* kt = k + t * Dh;
    const float st = ks ? scale * ks[t] : scale;
    for (int64_t g0 = t < n4 ? G4 : 0; g0 < G; g0 += 4) {
      const int64_t m = std::min<int64_t>(4, G - g0);
      __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
      for (int64_t c = 0; c < Dh; c += 16) {
        const __m512 kv = load16(kt + c);
        for (int64_t j = 0; j < m; ++j) a[j] = _mm512_fmadd_ps(_mm512_loadu_ps(q + (g0 + j) * Dh + c), kv, a[j]);
      }
      for (int64_t j = 0; j < m; ++j) s[(g0 + j) * P + t] = st * sum16(a[j]);
    }
  }
}

// acc_g += sum_t w_gt v_t, 64 columns (four registers, a fixed count so they stay in registers)
// per pass over the page's value rows, then 16 at a time. Dh % 16 == 0.
template <typename S>
void accumulate_avx512(const float* w, const S* v, int64_t G, int64_t n, int64_t Dh, int64_t P, float* acc) {
  for (int64_t g = 0; g < G; ++g) {
    const float* wg = w + g * P;
    float* ag = acc + g * Dh;
    int64_t c0 = 0;
    for (; c0 + 64 <= Dh; c0 += 64) {
      __m512 a0 = _mm512_loadu_ps(ag + c0), a1 = _mm512_loadu_ps(ag + c0 + 16);
      __m512 a2 = _mm512_loadu_ps(ag + c0 + 32), a3 = _mm512_loadu_ps(ag + c0 + 48);
      for (int64_t t = 0; t < n; ++t) {
        const __m512 wt = _mm512_set1_ps(wg[t]);
        const S* vt = v + t * Dh + c0;
        a0 = _mm512_fmadd_ps(wt, load16(vt), a0);
        a1 = _mm512_fmadd_ps(wt, load16(vt + 16), a1);
        a2 = _mm512_fmadd_ps(wt, load16(vt + 32), a2);
        a3 = _mm512_fmadd_ps(wt, load16(vt + 48), a3);
      }
      _mm512_storeu_ps(ag + c0, a0), _mm512_storeu_ps(ag + c0 + 16, a1);
      _mm512_storeu_ps(ag + c0 + 32, a2), _mm512_storeu_ps(ag + c0 + 48, a3);
    }
    for (; c0 < Dh; c0 += 16) {
      __m512 a = _mm512_loadu_ps(ag + c0);
      for (int64_t t = 0; t < n; ++t) a = _mm512_fmadd_ps(_mm512_set1_ps(wg[t]), load16(v + t * Dh + c0), a);
      _mm512_storeu_ps(ag + c0, a);
    }
  }
}
#endif

// Four independent dot products q_i . k_i of length Dh: four accumulator chains in flight instead of
// one latency-bound chain per (token, head) pair.
template <typename S>
inline void dot4(const float* const* q, const S* const* k, int64_t Dh, float* out) {
  const float *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
  const S *k0 = k[0], *k1 = k[1], *k2 = k[2], *k3 = k[3];
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t c = 0; c < Dh; ++c) {
    s0 += q0[c] * to_f32(k0[c]);
    s1 += q1[c] * to_f32(k1[c]);
    s2 += q2[c] * to_f32(k2[c]);
    s3 += q3[c] * to_f32(k3[c]);
  }
  out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

// Portable forms of the two page kernels (any Dh; GCC vectorises the inner loops).
template <typename S>
void scores(const float* q, const S* k, int64_t G, int64_t n, int64_t Dh, int64_t P, float scale, const float* ks,
            float* s) {
  // The n x G (token, head) pairs four at a time (the last group padded by repeating pair 0).
  const int64_t pairs = n * G;
  for (int64_t i0 = 0; i0 < pairs; i0 += 4) {
    const float* qp[4];
    const S* kp[4];
    float dots[4];
    for (int64_t j = 0; j < 4; ++j) {
      const int64_t i = i0 + j < pairs ? i0 + j : 0;
      qp[j] = q + (i % G) * Dh, kp[j] = k + (i / G) * Dh;
    }
    dot4(qp, kp, Dh, dots);
    for (int64_t j = 0; j < 4 && i0 + j < pairs; ++j) {
      const int64_t t = (i0 + j) / G, g = (i0 + j) % G;
      s[g * P + t] = (ks ? scale * ks[t] : scale) * dots[j];
    }
  }
}

template <typename S>
void accumulate(const float* w, const S* v, int64_t G, int64_t n, int64_t Dh, int64_t P, float* acc) {
  for (int64_t g = 0; g < G; ++g)
    for (int64_t t = 0; t < n; ++t) {
      const float wt = w[g * P + t];
      float* ag = acc + g * Dh;
#pragma omp simd
      for (int64_t c = 0; c < Dh; ++c) ag[c] += wt * to_f32(v[t * Dh + c]);
    }
}

struct Item {
  int64_t b, kvh, page0, page1, slot;  // slot: index of this piece's partial
};

// Runs one piece; writes m [G], l [G], acc [G, Dh] (unnormalised) to part.
template <typename S>
void run_piece(const PagedDecodeDims& d, const PagedKv& kv, float scale, float softcap, const float* q, const Item& it,
               float* s, float* part) {
  const PageLayout& L = kv.layout;
  const int64_t P = L.page_size, G = d.H / d.KVH, Dh = d.Dh, len = kv.lengths[it.b];
  float *m = part, *l = part + G, *acc = part + 2 * G;
  std::fill(m, m + G, -std::numeric_limits<float>::infinity());
  std::fill(l, l + G, 0.0f);
  std::fill(acc, acc + G * Dh, 0.0f);
  const float* qg = q + (it.b * d.H + it.kvh * G) * Dh;  // the group's G query rows, [G, Dh]
  for (int64_t pg = it.page0; pg < it.page1; ++pg) {
    const uint8_t* base = kv.pages[kv.tables[it.b][pg]];
    const int64_t n = std::min(P, len - pg * P);
    // This kv head's [P, Dh] slices of the page's K and V blocks: contiguous, so reads stream.
    const S* k = reinterpret_cast<const S*>(base + L.k_off) + it.kvh * P * Dh;
    const S* v = reinterpret_cast<const S*>(base + L.v_off) + it.kvh * P * Dh;
    const bool i8 = L.dtype == KvDType::I8;
    const float* ks = i8 ? reinterpret_cast<const float*>(base + L.k_scale_off) + it.kvh * P : nullptr;
    const float* vs = i8 ? reinterpret_cast<const float*>(base + L.v_scale_off) + it.kvh * P : nullptr;
#if defined(__AVX512F__)
    if (Dh % 16 == 0) scores_avx512(qg, k, G, n, Dh, P, scale, ks, s);
    else
#endif
      scores(qg, k, G, n, Dh, P, scale, ks, s);
    for (int64_t g = 0; g < G; ++g) {
      float* sg = s + g * P;
      if (softcap > 0.0f)
        for (int64_t t = 0; t < n; ++t) sg[t] = softcap * std::tanh(sg[t] / softcap);
      float mx = m[g];
      for (int64_t t = 0; t < n; ++t) mx = std::max(mx, sg[t]);
      const float corr = exp_f32(m[g] - mx);  // m = -inf on the first page: corr = 0
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t t = 0; t < n; ++t) {
        sg[t] = exp_f32(sg[t] - mx);
        sum += sg[t];
      }
      l[g] = l[g] * corr + sum, m[g] = mx;
      float* ag = acc + g * Dh;
#pragma omp simd
      for (int64_t c = 0; c < Dh; ++c) ag[c] *= corr;
      if (vs)
        for (int64_t t = 0; t < n; ++t) sg[t] *= vs[t];
    }
#if defined(__AVX512F__)
    if (Dh % 16 == 0) accumulate_avx512(s, v, G, n, Dh, P, acc);
    else
#endif
      accumulate(s, v, G, n, Dh, P, acc);
  }
}

}  // namespace

int64_t paged_decode_pieces(const PagedDecodeParams& p, const PagedDecodeDims& d, int64_t page_size, int64_t length,
                            int threads) {
  const int64_t pages = (length + page_size - 1) / page_size;
  if (p.splits > 0) return std::clamp<int64_t>(p.splits, 1, pages);
  // Enough work items for every thread, each piece >= kMinSplitTokens.
  const int64_t want = (threads + d.B * d.KVH - 1) / (d.B * d.KVH);
  return std::clamp<int64_t>(want, 1, std::min(pages, std::max<int64_t>(1, length / kMinSplitTokens)));
}

void paged_decode_fwd(const PagedDecodeParams& p, const PagedDecodeDims& d, const PagedKv& kv, const float* q,
                      float* o, float* lse) {
  SPEEDLM_ASSERT(paged_decode_check(p, d, kv).is_ok(), "{}", paged_decode_check(p, d, kv).message());
  const float scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(d.Dh));
  const int64_t P = kv.layout.page_size, G = d.H / d.KVH, part_size = G * (d.Dh + 2);
  std::vector<Item> items;
  std::vector<int64_t> first(d.B + 1, 0);  // items of sequence b: [first[b], first[b + 1]) per kv head
  int64_t tokens = 0;
  for (int64_t b = 0; b < d.B; ++b) {
    first[b + 1] = first[b] + paged_decode_pieces(p, d, P, kv.lengths[b], num_threads());
    tokens += kv.lengths[b];
  }
  for (int64_t b = 0; b < d.B; ++b) {
    const int64_t pages = (kv.lengths[b] + P - 1) / P, pieces = first[b + 1] - first[b];
    for (int64_t h = 0; h < d.KVH; ++h)
      for (int64_t i = 0; i < pieces; ++i)
        items.push_back({b, h, pages * i / pieces, pages * (i + 1) / pieces, (first[b] + i) * d.KVH + h});
  }
  Tensor parts = Tensor::empty({static_cast<int64_t>(items.size()), part_size});
  const int64_t n_items = static_cast<int64_t>(items.size());
  const int64_t grain = std::max<int64_t>(1, kMinSplitTokens * n_items / std::max<int64_t>(1, tokens * d.KVH));
  parallel_for(n_items, grain, [&](int64_t i0, int64_t i1) {
    std::vector<float> s(G * P);
    for (int64_t i = i0; i < i1; ++i) {
      float* part = parts.f32() + items[i].slot * part_size;
      switch (kv.layout.dtype) {
        case KvDType::F32: run_piece<float>(d, kv, scale, p.softcap, q, items[i], s.data(), part); break;
        case KvDType::BF16: run_piece<uint16_t>(d, kv, scale, p.softcap, q, items[i], s.data(), part); break;
        case KvDType::I8: run_piece<int8_t>(d, kv, scale, p.softcap, q, items[i], s.data(), part); break;
      }
    }
  });
  // Merge: M = max_s m_s, L = sum_s l_s exp(m_s - M), o = sum_s acc_s exp(m_s - M) / L, lse = M + log L.
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      const int64_t kvh = h / G, g = h % G;
      auto part = [&](int64_t piece) { return parts.f32() + ((first[b] + piece) * d.KVH + kvh) * part_size; };
      const int64_t pieces = first[b + 1] - first[b];
      float M = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < pieces; ++i) M = std::max(M, part(i)[g]);
      float* oh = o + (b * d.H + h) * d.Dh;
      std::fill(oh, oh + d.Dh, 0.0f);
      float L = 0.0f;
      for (int64_t i = 0; i < pieces; ++i) {
        const float w = std::exp(part(i)[g] - M);
        L += w * part(i)[G + g];
        const float* acc = part(i) + 2 * G + g * d.Dh;
#pragma omp simd
        for (int64_t c = 0; c < d.Dh; ++c) oh[c] += w * acc[c];
      }
      const float inv = 1.0f / L;
#pragma omp simd
      for (int64_t c = 0; c < d.Dh; ++c) oh[c] *= inv;
      lse[b * d.H + h] = M + std::log(L);
    }
}

}  // namespace speedlm::ops
