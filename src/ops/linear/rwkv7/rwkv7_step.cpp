// Step form of RWKV-7 WKV: the token recurrence in f32 (decoding; also the baseline the chunk form
// is timed against). Threaded over (b, h). The backward keeps a state checkpoint every p.chunk
// tokens and recomputes the states of one segment at a time.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "ops/linear/rwkv7/rwkv7.h"
#include "ops/linear/rwkv7/rwkv7_recurrent.h"

namespace speedlm::ops {

namespace {

rwkv7::HeadView<float> head_view(const Rwkv7Params& p, const Rwkv7Dims& d, const float* q, const float* w,
                                 const float* k, const float* v, const float* a, const float* b, int64_t bh) {
  const int64_t s = (bh / d.H) * d.T * d.H + bh % d.H, ko = s * d.K, vo = s * d.V;
  return {q + ko, w + ko, k + ko, v + vo, a + ko, b + ko, d.H * d.K, d.H * d.V, d.K, d.V, p.scale};
}

// Heads per thread range: each head-token costs ~8 K V flops; aim for >= ~30 us per range.
int64_t head_grain(const Rwkv7Dims& d) {
  return std::max<int64_t>(1, 200000 / std::max<int64_t>(1, 8 * d.K * d.V * std::max<int64_t>(1, d.T)));
}

}  // namespace

void rwkv7_step_fwd(const Rwkv7Params& p, const Rwkv7Dims& d, const float* q, const float* w, const float* k,
                    const float* v, const float* a, const float* b, float* state, float* o) {
  parallel_for(d.B * d.H, head_grain(d), [&](int64_t lo, int64_t hi) {
    std::vector<float> sa;
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t s = (bh / d.H) * d.T * d.H + bh % d.H;
      rwkv7::head_fwd(head_view(p, d, q, w, k, v, a, b, bh), 0, d.T, state + bh * d.K * d.V, o + s * d.V, sa);
    }
  });
}

void rwkv7_step_bwd(const Rwkv7Params& p, const Rwkv7Dims& d, const float* q, const float* w, const float* k,
                    const float* v, const float* a, const float* b, const float* h0, const float* d_o,
                    const float* d_ht, const Rwkv7Grads<float>& g) {
  const int64_t KV = d.K * d.V, C = p.chunk, n_seg = (d.T + C - 1) / C;
  parallel_for(d.B * d.H, head_grain(d), [&](int64_t lo, int64_t hi) {
    std::vector<float> ckpt(static_cast<size_t>((n_seg + 1) * KV)), dS(KV), states, tmp;
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t s = (bh / d.H) * d.T * d.H + bh % d.H, ko = s * d.K, vo = s * d.V;
      rwkv7::HeadView<float> hv = head_view(p, d, q, w, k, v, a, b, bh);
      for (int64_t i = 0; i < KV; ++i) {
        ckpt[i] = h0 ? h0[bh * KV + i] : 0.0f;
        dS[i] = d_ht ? d_ht[bh * KV + i] : 0.0f;
      }
      for (int64_t n = 0; n < n_seg; ++n) {
        std::memcpy(ckpt.data() + (n + 1) * KV, ckpt.data() + n * KV, sizeof(float) * KV);
        rwkv7::head_fwd(hv, n * C, std::min(d.T, (n + 1) * C), ckpt.data() + (n + 1) * KV,
                        static_cast<float*>(nullptr), tmp);
      }
      rwkv7::HeadGrads<float> hg{g.dq + ko, g.dw + ko, g.dk + ko, g.dv + vo, g.da + ko, g.db + ko};
      for (int64_t n = n_seg - 1; n >= 0; --n)
        rwkv7::head_bwd(hv, n * C, std::min(d.T, (n + 1) * C), ckpt.data() + n * KV, d_o + vo, dS.data(), hg,
                        states, tmp);
      if (g.dh0) std::memcpy(g.dh0 + bh * KV, dS.data(), sizeof(float) * KV);
    }
  });
}

}  // namespace speedlm::ops
