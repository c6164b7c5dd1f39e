// Reference paged decode (the spec): for each (b, h), walk the page table token by token,
// dequantise with paged_kv_load, softmax and weighted sum in double.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/attention/paged_decode/paged_decode.h"

namespace speedlm::ops {

void paged_decode_ref_fwd(const PagedDecodeParams& p, const PagedDecodeDims& d, const PagedKv& kv, const double* q,
                          double* o, double* lse) {
  SPEEDLM_ASSERT(paged_decode_check(p, d, kv).is_ok(), "{}", paged_decode_check(p, d, kv).message());
  const double scale = p.scale != 0.0f ? p.scale : 1.0 / std::sqrt(static_cast<double>(d.Dh));
  const int64_t P = kv.layout.page_size, group = d.H / d.KVH;
  std::vector<float> k(d.Dh), v(d.Dh);
  std::vector<double> s, acc(d.Dh);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      const int64_t n = kv.lengths[b];
      const double* qh = q + (b * d.H + h) * d.Dh;
      s.assign(n, 0.0);
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < n; ++j) {
        paged_kv_load(kv.layout, kv.pages[kv.tables[b][j / P]], j % P, h / group, k.data(), v.data());
        double dot = 0.0;
        for (int64_t c = 0; c < d.Dh; ++c) dot += qh[c] * static_cast<double>(k[c]);
        s[j] = scale * dot;
        if (p.softcap > 0.0f) s[j] = p.softcap * std::tanh(s[j] / p.softcap);
        mx = std::max(mx, s[j]);
      }
      double sum = 0.0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = 0; j < n; ++j) {
        paged_kv_load(kv.layout, kv.pages[kv.tables[b][j / P]], j % P, h / group, k.data(), v.data());
        const double w = std::exp(s[j] - mx);
        sum += w;
        for (int64_t c = 0; c < d.Dh; ++c) acc[c] += w * static_cast<double>(v[c]);
      }
      for (int64_t c = 0; c < d.Dh; ++c) o[(b * d.H + h) * d.Dh + c] = acc[c] / sum;
      lse[b * d.H + h] = mx + std::log(sum);
    }
}

}  // namespace speedlm::ops
