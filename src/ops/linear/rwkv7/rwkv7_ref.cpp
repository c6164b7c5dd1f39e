// Reference RWKV-7 WKV (the spec): the token recurrence in double, one head at a time. The
// backward keeps every state of the sequence (one segment of length T).
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "ops/linear/rwkv7/rwkv7.h"
#include "ops/linear/rwkv7/rwkv7_recurrent.h"

namespace speedlm::ops {

Status rwkv7_check(const Rwkv7Params& p, const Rwkv7Dims& d) {
  const std::pair<const char*, int64_t> dims[] = {{"batch", d.B}, {"heads", d.H}, {"key_dim", d.K}, {"value_dim", d.V}};
  for (const auto& [name, value] : dims)
    if (value < 1) return Status::errorf("rwkv7", "{} = {}: must be >= 1", name, value);
  if (d.T < 0) return Status::errorf("rwkv7", "T = {}: must be >= 0", d.T);
  if (p.chunk < 1 || p.chunk > 128) return Status::errorf("rwkv7", "chunk = {}: must be in [1, 128]", p.chunk);
  if (!std::isfinite(p.scale)) return Status::errorf("rwkv7", "scale = {}: must be finite", p.scale);
  return Status::ok();
}

namespace {

rwkv7::HeadView<double> head_view(const Rwkv7Params& p, const Rwkv7Dims& d, const double* q, const double* w,
                                  const double* k, const double* v, const double* a, const double* b, int64_t bh) {
  const int64_t s = (bh / d.H) * d.T * d.H + bh % d.H, ko = s * d.K, vo = s * d.V;
  return {q + ko, w + ko, k + ko, v + vo, a + ko, b + ko, d.H * d.K, d.H * d.V, d.K, d.V, p.scale};
}

}  // namespace

void rwkv7_ref_fwd(const Rwkv7Params& p, const Rwkv7Dims& d, const double* q, const double* w, const double* k,
                   const double* v, const double* a, const double* b, const double* h0, double* o, double* ht) {
  const int64_t KV = d.K * d.V;
  std::vector<double> sa;
  for (int64_t bh = 0; bh < d.B * d.H; ++bh) {
    double* S = ht + bh * KV;
    for (int64_t i = 0; i < KV; ++i) S[i] = h0 ? h0[bh * KV + i] : 0.0;
    const int64_t s = (bh / d.H) * d.T * d.H + bh % d.H;
    rwkv7::head_fwd(head_view(p, d, q, w, k, v, a, b, bh), 0, d.T, S, o + s * d.V, sa);
  }
}

void rwkv7_ref_bwd(const Rwkv7Params& p, const Rwkv7Dims& d, const double* q, const double* w, const double* k,
                   const double* v, const double* a, const double* b, const double* h0, const double* d_o,
                   const double* d_ht, const Rwkv7Grads<double>& g) {
  const int64_t KV = d.K * d.V;
  std::vector<double> S0(KV), dS(KV), states, tmp;
  for (int64_t bh = 0; bh < d.B * d.H; ++bh) {
    for (int64_t i = 0; i < KV; ++i) {
      S0[i] = h0 ? h0[bh * KV + i] : 0.0;
      dS[i] = d_ht ? d_ht[bh * KV + i] : 0.0;
    }
    const int64_t s = (bh / d.H) * d.T * d.H + bh % d.H, ko = s * d.K, vo = s * d.V;
    rwkv7::HeadGrads<double> hg{g.dq + ko, g.dw + ko, g.dk + ko, g.dv + vo, g.da + ko, g.db + ko};
    rwkv7::head_bwd(head_view(p, d, q, w, k, v, a, b, bh), 0, d.T, S0.data(), d_o + vo, dS.data(), hg, states, tmp);
    if (g.dh0) std::memcpy(g.dh0 + bh * KV, dS.data(), sizeof(double) * KV);
  }
}

}  // namespace speedlm::ops
