// Step form of the gated delta rule: the token recurrence in f32 (decoding; also the baseline the
// chunk form is timed against). Threaded over (b, h). The backward keeps a state checkpoint every
// p.chunk tokens and recomputes the states of one segment at a time.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "ops/linear/gated_delta_rule/gated_delta_rule.h"
#include "ops/linear/gated_delta_rule/gated_delta_rule_recurrent.h"

namespace speedlm::ops {

namespace {

gdr::HeadView<float> head_view(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d, const float* q,
                               const float* k, const float* v, const float* beta, const float* g, int64_t bh) {
  const int64_t b = bh / d.H, h = bh % d.H;
  const int64_t qk = (b * d.T * d.H + h) * d.K, vv = (b * d.T * d.H + h) * d.V, s = b * d.T * d.H + h;
  const float scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(d.K));
  return {q + qk, k + qk, v + vv, beta + s, g ? g + s : nullptr, d.H * d.K, d.H * d.V, d.H, d.K, d.V, scale};
}

// Heads per thread range: each head-token costs ~6 K V flops; aim for >= ~30 us per range.
int64_t head_grain(const GatedDeltaRuleDims& d) {
  return std::max<int64_t>(1, 200000 / std::max<int64_t>(1, 6 * d.K * d.V * std::max<int64_t>(1, d.T)));
}

}  // namespace

void gated_delta_rule_step_fwd(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d, const float* q,
                               const float* k, const float* v, const float* beta, const float* g, float* state,
                               float* o) {
  parallel_for(d.B * d.H, head_grain(d), [&](int64_t lo, int64_t hi) {
    std::vector<float> u;
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t b = bh / d.H, h = bh % d.H;
      gdr::head_fwd(head_view(p, d, q, k, v, beta, g, bh), 0, d.T, state + bh * d.K * d.V,
                    o + (b * d.T * d.H + h) * d.V, u);
    }
  });
}

void gated_delta_rule_step_bwd(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d, const float* q,
                               const float* k, const float* v, const float* beta, const float* g, const float* h0,
                               const float* d_o, const float* d_ht, const GatedDeltaRuleGradsF& gr) {
  const int64_t KV = d.K * d.V, C = p.chunk, n_seg = (d.T + C - 1) / C;
  parallel_for(d.B * d.H, head_grain(d), [&](int64_t lo, int64_t hi) {
    std::vector<float> ckpt(static_cast<size_t>((n_seg + 1) * KV)), dS(KV), states, tmp;
    for (int64_t bh = lo; bh < hi; ++bh) {
      const int64_t b = bh / d.H, h = bh % d.H;
      const int64_t qk = (b * d.T * d.H + h) * d.K, vv = (b * d.T * d.H + h) * d.V, s = b * d.T * d.H + h;
      gdr::HeadView<float> hv = head_view(p, d, q, k, v, beta, g, bh);
      for (int64_t i = 0; i < KV; ++i) {
        ckpt[i] = h0 ? h0[bh * KV + i] : 0.0f;
        dS[i] = d_ht ? d_ht[bh * KV + i] : 0.0f;
      }
      for (int64_t n = 0; n < n_seg; ++n) {
        std::memcpy(ckpt.data() + (n + 1) * KV, ckpt.data() + n * KV, sizeof(float) * KV);
        gdr::head_fwd(hv, n * C, std::min(d.T, (n + 1) * C), ckpt.data() + (n + 1) * KV,
                      static_cast<float*>(nullptr), tmp);
      }
      gdr::HeadGrads<float> hg{gr.dq + qk, gr.dk + qk, gr.dv + vv, gr.dbeta + s, gr.dg ? gr.dg + s : nullptr};
      for (int64_t n = n_seg - 1; n >= 0; --n)
        gdr::head_bwd(hv, n * C, std::min(d.T, (n + 1) * C), ckpt.data() + n * KV, d_o + vv, dS.data(), hg, states,
                      tmp);
      if (gr.dh0) std::memcpy(gr.dh0 + bh * KV, dS.data(), sizeof(float) * KV);
    }
  });
}

}  // namespace speedlm::ops
