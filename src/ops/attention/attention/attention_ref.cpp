// Reference softmax attention (the spec): plain loops over (sequence, h, i), double accumulators.
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
  if (p.window < 0) return Status::errorf("attention", "window = {}: must be >= 0 (0 = no window)", p.window);
  if (!(p.softcap >= 0.0f) || !std::isfinite(p.softcap))
    return Status::errorf("attention", "softcap = {}: must be finite and >= 0 (0 = none)", p.softcap);
  if (d.cu_seqlens) {
    if (d.seqs < 1) return Status::errorf("attention", "seqs = {}: must be >= 1 with cu_seqlens", d.seqs);
    if (d.B != 1) return Status::errorf("attention", "batch = {}: packed sequences need batch 1", d.B);
    if (d.Tq != d.Tk) return Status::errorf("attention", "Tk = {}: packed sequences need Tk = Tq ({})", d.Tk, d.Tq);
    if (d.cu_seqlens[0] != 0)
      return Status::errorf("attention", "cu_seqlens[0] = {}: must be 0", d.cu_seqlens[0]);
    for (int64_t s = 0; s < d.seqs; ++s)
      if (d.cu_seqlens[s + 1] < d.cu_seqlens[s])
        return Status::errorf("attention", "cu_seqlens[{}] = {}: offsets must not decrease (previous {})", s + 1,
                              d.cu_seqlens[s + 1], d.cu_seqlens[s]);
    if (d.cu_seqlens[d.seqs] != d.Tq)
      return Status::errorf("attention", "cu_seqlens[{}] = {}: must equal Tq ({})", d.seqs, d.cu_seqlens[d.seqs],
                            d.Tq);
  }
  return Status::ok();
}

namespace {

// Indexing and the probabilities of one query row, shared by the forward and the backward.
template <typename T>
struct RefView {
  const AttentionParams& p;
  const AttentionDims& d;
  const T *q, *k, *sinks;
  double scale = p.scale != 0.0f ? static_cast<double>(p.scale) : 1.0 / std::sqrt(static_cast<double>(d.Dh));

  int64_t q_at(const AttentionSeq& s, int64_t i, int64_t h) const {
    return ((s.b * d.Tq + s.q0 + i) * d.H + h) * d.Dh;
  }
  int64_t kv_at(const AttentionSeq& s, int64_t j, int64_t h) const {
    return ((s.b * d.Tk + s.k0 + j) * d.KVH + h / (d.H / d.KVH)) * d.Dh;
  }
  int64_t lse_at(const AttentionSeq& s, int64_t i, int64_t h) const { return (s.b * d.H + h) * d.Tq + s.q0 + i; }

  // pr[j] = p_ij over the visible keys [lo, hi) (the sink, if any, joins the denominator);
  // dcap[j] = ds/ds_raw = 1 - tanh^2 of the softcap (1 without). Returns lse_i (sink included).
  double probs(const AttentionSeq& s, int64_t h, int64_t i, std::vector<double>& pr, std::vector<double>& dcap) const {
    const T* qi = q + q_at(s, i, h);
    const auto [lo, hi] = attention_keys(p, s, i);
    double mx = sinks ? static_cast<double>(sinks[h]) : -std::numeric_limits<double>::infinity();
    for (int64_t j = lo; j < hi; ++j) {
      const T* kj = k + kv_at(s, j, h);
      double acc = 0.0;
      for (int64_t c = 0; c < d.Dh; ++c) acc += static_cast<double>(qi[c]) * static_cast<double>(kj[c]);
      pr[j] = scale * acc;
      dcap[j] = 1.0;
      if (p.softcap > 0.0f) {
        const double c = p.softcap, t = std::tanh(pr[j] / c);
        pr[j] = c * t;
        dcap[j] = 1.0 - t * t;
      }
      mx = std::max(mx, pr[j]);
    }
    double sum = sinks ? std::exp(static_cast<double>(sinks[h]) - mx) : 0.0;
    for (int64_t j = lo; j < hi; ++j) {
      pr[j] = std::exp(pr[j] - mx);
      sum += pr[j];
    }
    for (int64_t j = lo; j < hi; ++j) pr[j] /= sum;
    return mx + std::log(sum);
  }
};

}  // namespace

template <typename T>
void attention_ref_fwd(const AttentionParams& p, const AttentionDims& d, const T* q, const T* k, const T* v, T* o,
                       T* lse, const T* sinks) {
  SPEEDLM_ASSERT(attention_check(p, d).is_ok(), "{}", attention_check(p, d).message());
  RefView<T> r{p, d, q, k, sinks};
  std::vector<double> pr(d.Tk), dcap(d.Tk), acc(d.Dh);
  for (int64_t sq = 0; sq < attention_num_seqs(d); ++sq) {
    const AttentionSeq s = attention_seq(d, sq);
    for (int64_t h = 0; h < d.H; ++h)
      for (int64_t i = 0; i < s.Tq; ++i) {
        const double l = r.probs(s, h, i, pr, dcap);
        std::fill(acc.begin(), acc.end(), 0.0);
        const auto [lo, hi] = attention_keys(p, s, i);
        for (int64_t j = lo; j < hi; ++j) {
          const T* vj = v + r.kv_at(s, j, h);
          for (int64_t c = 0; c < d.Dh; ++c) acc[c] += pr[j] * static_cast<double>(vj[c]);
        }
        T* oi = o + r.q_at(s, i, h);
        for (int64_t c = 0; c < d.Dh; ++c) oi[c] = static_cast<T>(acc[c]);
        lse[r.lse_at(s, i, h)] = static_cast<T>(l);
      }
  }
}

template <typename T>
void attention_ref_bwd(const AttentionParams& p, const AttentionDims& d, const T* q, const T* k, const T* v,
                       const T* d_o, T* dq, T* dk, T* dv, const T* sinks, T* d_sinks) {
  SPEEDLM_ASSERT(attention_check(p, d).is_ok(), "{}", attention_check(p, d).message());
  RefView<T> r{p, d, q, k, sinks};
  const size_t nq = static_cast<size_t>(d.B * d.Tq * d.H * d.Dh), nk = static_cast<size_t>(d.B * d.Tk * d.KVH * d.Dh);
  std::vector<double> gq(nq, 0.0), gk(nk, 0.0), gv(nk, 0.0), gs(d.H, 0.0), pr(d.Tk), dcap(d.Tk), dp(d.Tk);
  for (int64_t sq = 0; sq < attention_num_seqs(d); ++sq) {
    const AttentionSeq s = attention_seq(d, sq);
    for (int64_t h = 0; h < d.H; ++h)
      for (int64_t i = 0; i < s.Tq; ++i) {
        // p_ij = exp(s_ij - lse_i); dP_ij = dO_i . v_j; D_i = sum_j p_ij dP_ij (= dO_i . O_i).
        const double l = r.probs(s, h, i, pr, dcap);
        const auto [lo, hi] = attention_keys(p, s, i);
        double D = 0.0;
        const T* doi = d_o + r.q_at(s, i, h);
        for (int64_t j = lo; j < hi; ++j) {
          const T* vj = v + r.kv_at(s, j, h);
          double acc = 0.0;
          for (int64_t c = 0; c < d.Dh; ++c) acc += static_cast<double>(doi[c]) * static_cast<double>(vj[c]);
          dp[j] = acc;
          D += pr[j] * acc;
        }
        // The sink is a key with value 0: its dP is 0, so its dS is -P_sink D.
        if (sinks) gs[h] -= std::exp(static_cast<double>(sinks[h]) - l) * D;
        const T* qi = q + r.q_at(s, i, h);
        double* gqi = gq.data() + r.q_at(s, i, h);
        for (int64_t j = lo; j < hi; ++j) {
          const double ds = r.scale * pr[j] * (dp[j] - D) * dcap[j];  // scale * dS_raw_ij
          const int64_t at = r.kv_at(s, j, h);
          for (int64_t c = 0; c < d.Dh; ++c) {
            gqi[c] += ds * static_cast<double>(k[at + c]);
            gk[at + c] += ds * static_cast<double>(qi[c]);
            gv[at + c] += pr[j] * static_cast<double>(doi[c]);
          }
        }
      }
  }
  for (size_t n = 0; n < nq; ++n) dq[n] = static_cast<T>(gq[n]);
  for (size_t n = 0; n < nk; ++n) {
    dk[n] = static_cast<T>(gk[n]);
    dv[n] = static_cast<T>(gv[n]);
  }
  if (sinks && d_sinks)
    for (int64_t h = 0; h < d.H; ++h) d_sinks[h] = static_cast<T>(gs[h]);
}

template void attention_ref_fwd<float>(const AttentionParams&, const AttentionDims&, const float*, const float*,
                                       const float*, float*, float*, const float*);
template void attention_ref_fwd<double>(const AttentionParams&, const AttentionDims&, const double*, const double*,
                                        const double*, double*, double*, const double*);
template void attention_ref_bwd<float>(const AttentionParams&, const AttentionDims&, const float*, const float*,
                                       const float*, const float*, float*, float*, float*, const float*, float*);
template void attention_ref_bwd<double>(const AttentionParams&, const AttentionDims&, const double*, const double*,
                                        const double*, const double*, double*, double*, double*, const double*,
                                        double*);

}  // namespace speedlm::ops
