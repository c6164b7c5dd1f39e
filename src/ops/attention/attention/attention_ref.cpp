// Reference softmax attention (the spec): plain loops over (b, h, i), double accumulators.
// The backward recomputes the scores from q and k; see README.md for the derivation.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "ops/attention/attention/attention.h"

namespace speedlm::ops {

Status attention_check(const AttentionParams& p, const AttentionDims& d) {
  const std::pair<const char*, int64_t> dims[] = {{"batch", d.B},   {"Tq", d.Tq},       {"Tk", d.Tk},
                                                  {"heads", d.H},   {"kv_heads", d.KVH}, {"head_dim", d.Dh}};
  for (const auto& [name, value] : dims)
    if (value < 1) return Status::errorf("attention", "{} = {}: must be >= 1", name, value);
  if (d.H % d.KVH != 0)
    return Status::errorf("attention", "kv_heads = {}: heads ({}) must be a multiple of it", d.KVH, d.H);
  if (p.causal && d.Tq > d.Tk)
    return Status::errorf("attention", "Tq = {}: causal attention needs Tq <= Tk ({}), else a query sees no key", d.Tq,
                          d.Tk);
  if (!std::isfinite(p.scale)) return Status::errorf("attention", "scale = {}: must be finite", p.scale);
  return Status::ok();
}

namespace {

// Indexing and the scores of one query row, shared by the forward and the backward.
template <typename T>
struct RefView {
  const AttentionParams& p;
  const AttentionDims& d;
  const T *q, *k;
  double scale = p.scale != 0.0f ? static_cast<double>(p.scale) : 1.0 / std::sqrt(static_cast<double>(d.Dh));

  int64_t q_at(int64_t b, int64_t i, int64_t h) const { return ((b * d.Tq + i) * d.H + h) * d.Dh; }
  int64_t kv_at(int64_t b, int64_t j, int64_t h) const { return ((b * d.Tk + j) * d.KVH + h / (d.H / d.KVH)) * d.Dh; }
  // Keys 0 .. visible(i) - 1 are visible to query i (bottom-right aligned causal mask).
  int64_t visible(int64_t i) const { return p.causal ? i + d.Tk - d.Tq + 1 : d.Tk; }

  // pr[j] = p_ij = softmax_j(s_ij) over the visible keys; returns lse_i, the log-sum-exp of s_i.
  double probs(int64_t b, int64_t h, int64_t i, std::vector<double>& pr) const {
    const T* qi = q + q_at(b, i, h);
    double mx = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < visible(i); ++j) {
      const T* kj = k + kv_at(b, j, h);
      double acc = 0.0;
      for (int64_t c = 0; c < d.Dh; ++c) acc += static_cast<double>(qi[c]) * static_cast<double>(kj[c]);
      pr[j] = scale * acc;
      mx = std::max(mx, pr[j]);
    }
    double sum = 0.0;
    for (int64_t j = 0; j < visible(i); ++j) {
      pr[j] = std::exp(pr[j] - mx);
      sum += pr[j];
    }
    for (int64_t j = 0; j < visible(i); ++j) pr[j] /= sum;
    return mx + std::log(sum);
  }
};

}  // namespace

template <typename T>
void attention_ref_fwd(const AttentionParams& p, const AttentionDims& d, const T* q, const T* k, const T* v, T* o,
                       T* lse) {
  SPEEDLM_ASSERT(attention_check(p, d).is_ok(), "{}", attention_check(p, d).message());
  RefView<T> r{p, d, q, k};
  std::vector<double> pr(d.Tk), acc(d.Dh);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h)
      for (int64_t i = 0; i < d.Tq; ++i) {
        const double l = r.probs(b, h, i, pr);
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < r.visible(i); ++j) {
          const T* vj = v + r.kv_at(b, j, h);
          for (int64_t c = 0; c < d.Dh; ++c) acc[c] += pr[j] * static_cast<double>(vj[c]);
        }
        T* oi = o + r.q_at(b, i, h);
        for (int64_t c = 0; c < d.Dh; ++c) oi[c] = static_cast<T>(acc[c]);
        lse[(b * d.H + h) * d.Tq + i] = static_cast<T>(l);
      }
}

template <typename T>
void attention_ref_bwd(const AttentionParams& p, const AttentionDims& d, const T* q, const T* k, const T* v,
                       const T* d_o, T* dq, T* dk, T* dv) {
  SPEEDLM_ASSERT(attention_check(p, d).is_ok(), "{}", attention_check(p, d).message());
  RefView<T> r{p, d, q, k};
  const size_t nq = static_cast<size_t>(d.B * d.Tq * d.H * d.Dh), nk = static_cast<size_t>(d.B * d.Tk * d.KVH * d.Dh);
  std::vector<double> gq(nq, 0.0), gk(nk, 0.0), gv(nk, 0.0), pr(d.Tk), dp(d.Tk);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h)
      for (int64_t i = 0; i < d.Tq; ++i) {
        // p_ij = exp(s_ij - lse_i); dP_ij = dO_i . v_j; D_i = sum_j p_ij dP_ij (= dO_i . O_i).
        r.probs(b, h, i, pr);
        double D = 0.0;
        const T* doi = d_o + r.q_at(b, i, h);
        for (int64_t j = 0; j < r.visible(i); ++j) {
          const T* vj = v + r.kv_at(b, j, h);
          double acc = 0.0;
          for (int64_t c = 0; c < d.Dh; ++c) acc += static_cast<double>(doi[c]) * static_cast<double>(vj[c]);
          dp[j] = acc;
          D += pr[j] * acc;
        }
        const T* qi = q + r.q_at(b, i, h);
        double* gqi = gq.data() + r.q_at(b, i, h);
        for (int64_t j = 0; j < r.visible(i); ++j) {
          const double ds = r.scale * pr[j] * (dp[j] - D);  // scale * dS_ij
          const int64_t at = r.kv_at(b, j, h);
          for (int64_t c = 0; c < d.Dh; ++c) {
            gqi[c] += ds * static_cast<double>(k[at + c]);
            gk[at + c] += ds * static_cast<double>(qi[c]);
            gv[at + c] += pr[j] * static_cast<double>(doi[c]);
          }
        }
      }
  for (size_t n = 0; n < nq; ++n) dq[n] = static_cast<T>(gq[n]);
  for (size_t n = 0; n < nk; ++n) {
    dk[n] = static_cast<T>(gk[n]);
    dv[n] = static_cast<T>(gv[n]);
  }
}

template void attention_ref_fwd<float>(const AttentionParams&, const AttentionDims&, const float*, const float*,
                                       const float*, float*, float*);
template void attention_ref_fwd<double>(const AttentionParams&, const AttentionDims&, const double*, const double*,
                                        const double*, double*, double*);
template void attention_ref_bwd<float>(const AttentionParams&, const AttentionDims&, const float*, const float*,
                                       const float*, const float*, float*, float*, float*);
template void attention_ref_bwd<double>(const AttentionParams&, const AttentionDims&, const double*, const double*,
                                        const double*, const double*, double*, double*, double*);

}  // namespace speedlm::ops
