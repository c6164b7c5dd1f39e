// Reference gated delta rule (the spec): the token recurrence in double, one head at a time.
// The backward keeps every state of the sequence (one segment of length T).
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "ops/linear/gated_delta_rule/gated_delta_rule.h"
#include "ops/linear/gated_delta_rule/gated_delta_rule_recurrent.h"

namespace speedlm::ops {

Status gated_delta_rule_check(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d) {
  const std::pair<const char*, int64_t> dims[] = {{"batch", d.B}, {"heads", d.H}, {"key_dim", d.K}, {"value_dim", d.V}};
  for (const auto& [name, value] : dims)
    if (value < 1) return Status::errorf("gated_delta_rule", "{} = {}: must be >= 1", name, value);
  if (d.T < 0) return Status::errorf("gated_delta_rule", "T = {}: must be >= 0", d.T);
  if (p.chunk < 1 || p.chunk > 128)
    return Status::errorf("gated_delta_rule", "chunk = {}: must be in [1, 128]", p.chunk);
  if (!std::isfinite(p.scale)) return Status::errorf("gated_delta_rule", "scale = {}: must be finite", p.scale);
  return Status::ok();
}

namespace {

gdr::HeadView<double> head_view(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d, const double* q,
                                const double* k, const double* v, const double* beta, const double* g, int64_t b,
                                int64_t h) {
  const int64_t qk = (b * d.T * d.H + h) * d.K, vv = (b * d.T * d.H + h) * d.V, s = b * d.T * d.H + h;
  const double scale = p.scale != 0.0f ? p.scale : 1.0 / std::sqrt(static_cast<double>(d.K));
  return {q + qk, k + qk, v + vv, beta + s, g ? g + s : nullptr, d.H * d.K, d.H * d.V, d.H, d.K, d.V, scale};
}

}  // namespace

void gated_delta_rule_ref_fwd(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d, const double* q,
                              const double* k, const double* v, const double* beta, const double* g, const double* h0,
                              double* o, double* ht) {
  const int64_t KV = d.K * d.V;
  std::vector<double> S(KV), u;
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      const int64_t si = (b * d.H + h) * KV;
      for (int64_t i = 0; i < KV; ++i) S[i] = h0 ? h0[si + i] : 0.0;
      gdr::HeadView<double> hv = head_view(p, d, q, k, v, beta, g, b, h);
      gdr::head_fwd(hv, 0, d.T, S.data(), o + (b * d.T * d.H + h) * d.V, u);
      std::memcpy(ht + si, S.data(), sizeof(double) * KV);
    }
}

void gated_delta_rule_ref_bwd(const GatedDeltaRuleParams& p, const GatedDeltaRuleDims& d, const double* q,
                              const double* k, const double* v, const double* beta, const double* g, const double* h0,
                              const double* d_o, const double* d_ht, const GatedDeltaRuleGrads& gr) {
  const int64_t KV = d.K * d.V;
  std::vector<double> S0(KV), dS(KV), states, tmp;
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      const int64_t si = (b * d.H + h) * KV, qk = (b * d.T * d.H + h) * d.K, vv = (b * d.T * d.H + h) * d.V,
                    s = b * d.T * d.H + h;
      for (int64_t i = 0; i < KV; ++i) {
        S0[i] = h0 ? h0[si + i] : 0.0;
        dS[i] = d_ht ? d_ht[si + i] : 0.0;
      }
      gdr::HeadView<double> hv = head_view(p, d, q, k, v, beta, g, b, h);
      gdr::HeadGrads<double> hg{gr.dq + qk, gr.dk + qk, gr.dv + vv, gr.dbeta + s, gr.dg ? gr.dg + s : nullptr};
      gdr::head_bwd(hv, 0, d.T, S0.data(), d_o + vv, dS.data(), hg, states, tmp);
      if (gr.dh0) std::memcpy(gr.dh0 + si, dS.data(), sizeof(double) * KV);
    }
}

}  // namespace speedlm::ops
