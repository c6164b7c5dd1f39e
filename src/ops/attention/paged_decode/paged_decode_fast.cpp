// Fast paged decode, f32 arithmetic on f32 / bf16 / int8 pages read in place.
// Work item = (sequence b, kv head, piece of the sequence's pages). The G = H / KVH query heads
// of a kv head are processed together, so each key and value row is read from memory once per
// step (decode is bandwidth-bound). Within a piece: online softmax page by page (scores of the
// page's tokens for all G heads, rescale by exp(m_old - m_new), accumulate p * v); int8 scales
// are folded into the score and into p. Pieces write (m, l, acc) partials that are merged by
// log-sum-exp (README.md, "Split-KV"); a single piece goes through the same merge.
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <vector>

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

struct Item {
  int64_t b, kvh, page0, page1, slot;  // slot: index of this piece's partial
};

// Runs one piece; writes m [G], l [G], acc [G, Dh] (unnormalised) to part.
template <typename S>
void run_piece(const PagedDecodeDims& d, const PagedKv& kv, float scale, const float* q, const Item& it, float* s,
               float* part) {
  const PageLayout& L = kv.layout;
  const int64_t P = L.page_size, G = d.H / d.KVH, Dh = d.Dh, row = d.KVH * Dh, len = kv.lengths[it.b];
  float *m = part, *l = part + G, *acc = part + 2 * G;
  std::fill(m, m + G, -std::numeric_limits<float>::infinity());
  std::fill(l, l + G, 0.0f);
  std::fill(acc, acc + G * Dh, 0.0f);
  const float* qg = q + (it.b * d.H + it.kvh * G) * Dh;  // the group's G query rows, [G, Dh]
  for (int64_t pg = it.page0; pg < it.page1; ++pg) {
    const uint8_t* base = kv.pages[kv.tables[it.b][pg]];
    const int64_t n = std::min(P, len - pg * P);
    const S* k = reinterpret_cast<const S*>(base + L.k_off) + it.kvh * Dh;
    const S* v = reinterpret_cast<const S*>(base + L.v_off) + it.kvh * Dh;
    const float* ks = L.dtype == KvDType::I8 ? reinterpret_cast<const float*>(base + L.k_scale_off) + it.kvh : nullptr;
    const float* vs = L.dtype == KvDType::I8 ? reinterpret_cast<const float*>(base + L.v_scale_off) + it.kvh : nullptr;
    for (int64_t t = 0; t < n; ++t) {
      const S* kt = k + t * row;
      const float st = ks ? scale * ks[t * d.KVH] : scale;
      for (int64_t g = 0; g < G; ++g) {
        const float* qh = qg + g * Dh;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int64_t c = 0; c < Dh; ++c) dot += qh[c] * to_f32(kt[c]);
        s[g * P + t] = st * dot;
      }
    }
    for (int64_t g = 0; g < G; ++g) {
      float* sg = s + g * P;
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
        for (int64_t t = 0; t < n; ++t) sg[t] *= vs[t * d.KVH];
    }
    for (int64_t t = 0; t < n; ++t) {
      const S* vt = v + t * row;
      for (int64_t g = 0; g < G; ++g) {
        const float w = s[g * P + t];
        float* ag = acc + g * Dh;
#pragma omp simd
        for (int64_t c = 0; c < Dh; ++c) ag[c] += w * to_f32(vt[c]);
      }
    }
  }
}

}  // namespace

void paged_decode_fwd(const PagedDecodeParams& p, const PagedDecodeDims& d, const PagedKv& kv, const float* q,
                      float* o, float* lse) {
  SPEEDLM_ASSERT(paged_decode_check(p, d, kv).is_ok(), "{}", paged_decode_check(p, d, kv).message());
  const float scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(d.Dh));
  const int64_t P = kv.layout.page_size, G = d.H / d.KVH, part_size = G * (d.Dh + 2);
  // Pieces per sequence: enough work items for every thread, each piece >= kMinSplitTokens.
  const int64_t want = p.splits > 0 ? p.splits : (num_threads() + d.B * d.KVH - 1) / (d.B * d.KVH);
  std::vector<Item> items;
  std::vector<int64_t> first(d.B + 1, 0);  // items of sequence b: [first[b], first[b + 1]) per kv head
  int64_t tokens = 0;
  for (int64_t b = 0; b < d.B; ++b) {
    const int64_t pages = (kv.lengths[b] + P - 1) / P;
    const int64_t cap = p.splits > 0 ? pages : std::max<int64_t>(1, kv.lengths[b] / kMinSplitTokens);
    const int64_t pieces = std::clamp<int64_t>(want, 1, std::min(pages, cap));
    first[b + 1] = first[b] + pieces;
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
        case KvDType::F32: run_piece<float>(d, kv, scale, q, items[i], s.data(), part); break;
        case KvDType::BF16: run_piece<uint16_t>(d, kv, scale, q, items[i], s.data(), part); break;
        case KvDType::I8: run_piece<int8_t>(d, kv, scale, q, items[i], s.data(), part); break;
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
