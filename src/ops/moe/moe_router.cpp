// The router, one token at a time (shared by the reference, T = double, and the f32 form,
// which runs it threaded over tokens), and the grouping of slots by expert.
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

#include "core/parallel.h"
#include "ops/moe/moe.h"

namespace speedlm::ops {

namespace {

// s = softmax(logits) or sigmoid(logits), [E].
template <typename T>
void router_scores(const MoeParams& p, const T* logits, T* s) {
  if (p.score == RouterScore::Sigmoid) {
    for (int64_t e = 0; e < p.E; ++e) s[e] = T(1) / (T(1) + std::exp(-logits[e]));
    return;
  }
  T m = *std::max_element(logits, logits + p.E), sum = 0;
  for (int64_t e = 0; e < p.E; ++e) sum += s[e] = std::exp(logits[e] - m);
  for (int64_t e = 0; e < p.E; ++e) s[e] /= sum;
}

// Indices of the n largest of v[0..m) among allowed ones, largest first; ties go to the lower index.
template <typename T>
void top_n(const T* v, const bool* allowed, int64_t m, int64_t n, int32_t* out) {
  for (int64_t j = 0; j < n; ++j) {
    int32_t best = -1;
    for (int64_t i = 0; i < m; ++i) {
      if (!allowed[i] || std::find(out, out + j, static_cast<int32_t>(i)) != out + j) continue;
      if (best < 0 || v[i] > v[best]) best = static_cast<int32_t>(i);
    }
    out[j] = best;
  }
}

}  // namespace

template <typename T>
void moe_route_token(const MoeParams& p, const T* logits, const T* bias, int32_t* expert, T* weight) {
  std::array<T, kMoeMaxExperts> s, sel;
  std::array<bool, kMoeMaxExperts> allowed;
  router_scores(p, logits, s.data());
  for (int64_t e = 0; e < p.E; ++e) sel[e] = s[e] + (bias ? bias[e] : T(0)), allowed[e] = true;
  if (p.groups > 1) {
    // Group score: the sum of the group's two best selection scores (DeepSeek-V3).
    const int64_t G = p.E / p.groups;
    std::array<T, kMoeMaxExperts> gscore;
    std::array<int32_t, 2> best;
    std::array<int32_t, kMoeMaxExperts> keep;
    for (int64_t g = 0; g < p.groups; ++g) {
      int64_t n = std::min<int64_t>(2, G);
      top_n(sel.data() + g * G, allowed.data(), G, n, best.data());
      gscore[g] = 0;
      for (int64_t j = 0; j < n; ++j) gscore[g] += sel[g * G + best[j]];
    }
    top_n(gscore.data(), allowed.data(), p.groups, p.topk_groups, keep.data());
    std::fill_n(allowed.begin(), p.E, false);
    for (int64_t j = 0; j < p.topk_groups; ++j) std::fill_n(allowed.begin() + keep[j] * G, G, true);
  }
  top_n(sel.data(), allowed.data(), p.E, p.k, expert);
  T sum = 0;
  for (int64_t j = 0; j < p.k; ++j) sum += weight[j] = s[expert[j]];
  T scale = p.renormalize ? T(p.route_scale) / sum : T(p.route_scale);
  for (int64_t j = 0; j < p.k; ++j) weight[j] *= scale;
}

template <typename T>
void moe_route_token_bwd(const MoeParams& p, const T* logits, const int32_t* expert, const T* d_weight, T* d_logits) {
  std::array<T, kMoeMaxExperts> s, ds;
  router_scores(p, logits, s.data());
  std::fill_n(ds.begin(), p.E, T(0));
  const T c = T(p.route_scale);
  if (p.renormalize) {
    // w_j = c s_j / S: ds_j = (c / S) (dw_j - sum_i dw_i s_i / S).
    T S = 0, dot = 0;
    for (int64_t j = 0; j < p.k; ++j) S += s[expert[j]];
    for (int64_t j = 0; j < p.k; ++j) dot += d_weight[j] * s[expert[j]];
    for (int64_t j = 0; j < p.k; ++j) ds[expert[j]] = c / S * (d_weight[j] - dot / S);
  } else {
    for (int64_t j = 0; j < p.k; ++j) ds[expert[j]] = c * d_weight[j];
  }
  if (p.score == RouterScore::Sigmoid) {
    for (int64_t e = 0; e < p.E; ++e) d_logits[e] = ds[e] * s[e] * (T(1) - s[e]);
    return;
  }
  T dot = 0;
  for (int64_t e = 0; e < p.E; ++e) dot += ds[e] * s[e];
  for (int64_t e = 0; e < p.E; ++e) d_logits[e] = s[e] * (ds[e] - dot);
}

template void moe_route_token<float>(const MoeParams&, const float*, const float*, int32_t*, float*);
template void moe_route_token<double>(const MoeParams&, const double*, const double*, int32_t*, double*);
template void moe_route_token_bwd<float>(const MoeParams&, const float*, const int32_t*, const float*, float*);
template void moe_route_token_bwd<double>(const MoeParams&, const double*, const int32_t*, const double*, double*);

int64_t moe_capacity(const MoeParams& p, int64_t N) {
  if (p.capacity_factor <= 0.0) return N * p.k;
  return static_cast<int64_t>(std::ceil(static_cast<double>(N * p.k) / static_cast<double>(p.E) * p.capacity_factor));
}

int64_t moe_padded_rows(int64_t m) {
  if (m <= 16) return m;
  int64_t step = int64_t{1} << (std::bit_width(static_cast<uint64_t>(m)) - 5);
  return (m + step - 1) / step * step;
}

MoeRouting moe_route(const MoeParams& p, int64_t N, const float* logits, const float* bias) {
  MoeRouting r;
  r.N = N, r.k = p.k, r.E = p.E;
  const int64_t S = N * p.k;
  r.expert.resize(S);
  r.weight.resize(S);
  // ~1 us per token for E = 64: 64 tokens per piece.
  parallel_for(N, 64, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      moe_route_token<float>(p, logits + n * p.E, bias, r.expert.data() + n * p.k, r.weight.data() + n * p.k);
  });
  // Slots in token order: an expert keeps its first `capacity` slots (stable, deterministic).
  const int64_t cap = moe_capacity(p, N);
  r.routed.assign(p.E, 0);
  r.kept.assign(p.E, 0);
  r.row.assign(S, -1);
  for (int64_t s = 0; s < S; ++s) {
    int32_t e = r.expert[s];
    ++r.routed[e];
    if (r.kept[e] < cap) r.row[s] = r.kept[e]++;  // rank within the expert for now
  }
  r.offset.assign(p.E + 1, 0);
  for (int64_t e = 0; e < p.E; ++e) r.offset[e + 1] = r.offset[e] + moe_padded_rows(r.kept[e]);
  r.slot.assign(r.rows(), -1);
  for (int64_t s = 0; s < S; ++s) {
    if (r.row[s] < 0) {
      ++r.dropped;
      continue;
    }
    r.row[s] += r.offset[r.expert[s]];
    r.slot[r.row[s]] = s;
  }
  return r;
}

void moe_route_bwd(const MoeParams& p, const MoeRouting& r, const float* logits, const float* d_weight,
                   float* d_logits) {
  parallel_for(r.N, 64, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      moe_route_token_bwd<float>(p, logits + n * p.E, r.expert.data() + n * p.k, d_weight + n * p.k,
                                 d_logits + n * p.E);
  });
}

}  // namespace speedlm::ops
