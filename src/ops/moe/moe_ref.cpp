// Reference MoE (the spec): for each token, a loop over its chosen experts, double
// accumulators; and the balancing losses. See README.md for the math.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "ops/moe/moe.h"

namespace speedlm::ops {

Status moe_check(const MoeParams& p, int64_t N, int64_t D) {
  if (p.E < 1 || p.E > kMoeMaxExperts) return Status::errorf("moe", "experts = {}: must be in [1, {}]", p.E, kMoeMaxExperts);
  if (p.k < 1 || p.k > p.E) return Status::errorf("moe", "top_k = {}: must be in [1, experts = {}]", p.k, p.E);
  if (p.F < 1) return Status::errorf("moe", "hidden = {}: must be >= 1", p.F);
  if (N < 0) return Status::errorf("moe", "tokens = {}: must be >= 0", N);
  if (D < 1) return Status::errorf("moe", "d_model = {}: must be >= 1", D);
  if (p.groups < 1 || p.E % p.groups != 0)
    return Status::errorf("moe", "groups = {}: must divide experts = {}", p.groups, p.E);
  if (p.topk_groups < 1 || p.topk_groups > p.groups)
    return Status::errorf("moe", "topk_groups = {}: must be in [1, groups = {}]", p.topk_groups, p.groups);
  if (p.topk_groups * (p.E / p.groups) < p.k)
    return Status::errorf("moe", "topk_groups = {}: {} groups of {} experts hold fewer than top_k = {}", p.topk_groups,
                          p.topk_groups, p.E / p.groups, p.k);
  if (!(p.capacity_factor >= 0.0) || !std::isfinite(p.capacity_factor))
    return Status::errorf("moe", "capacity_factor = {}: must be >= 0 (0: no capacity limit)", p.capacity_factor);
  if (!(p.route_scale > 0.0f) || !std::isfinite(p.route_scale))
    return Status::errorf("moe", "route_scale = {}: must be > 0", p.route_scale);
  return Status::ok();
}

namespace {

template <typename T>
T sigmoid(T g) {
  return T(1) / (T(1) + std::exp(-g));
}

// One expert on one token: h = W1 x ([2F]), a = silu(g) * u ([F]), o = W2 a ([D]).
template <typename T>
void expert_fwd(int64_t D, int64_t F, const T* w1, const T* w2, const T* x, T* h, T* a, T* o) {
  for (int64_t i = 0; i < 2 * F; ++i) {
    double acc = 0.0;
    for (int64_t d = 0; d < D; ++d) acc += static_cast<double>(w1[i * D + d]) * x[d];
    h[i] = static_cast<T>(acc);
  }
  for (int64_t f = 0; f < F; ++f) a[f] = h[f] * sigmoid(h[f]) * h[F + f];
  for (int64_t d = 0; d < D; ++d) {
    double acc = 0.0;
    for (int64_t f = 0; f < F; ++f) acc += static_cast<double>(w2[d * F + f]) * a[f];
    o[d] = static_cast<T>(acc);
  }
}

// Walks the slots in token order, applying the capacity limit: fn(n, j, expert, weight).
template <typename T, typename Fn>
void for_kept_slots(const MoeParams& p, int64_t N, const T* logits, const T* bias, Fn&& fn) {
  const int64_t cap = moe_capacity(p, N);
  std::vector<int64_t> kept(p.E, 0);
  std::vector<int32_t> expert(p.k);
  std::vector<T> weight(p.k);
  for (int64_t n = 0; n < N; ++n) {
    moe_route_token<T>(p, logits + n * p.E, bias, expert.data(), weight.data());
    for (int64_t j = 0; j < p.k; ++j) {
      int32_t e = expert[j];
      if (kept[e] >= cap) continue;
      ++kept[e];
      fn(n, j, e, weight[j]);
    }
  }
}

}  // namespace

template <typename T>
void moe_ref_fwd(const MoeParams& p, int64_t N, int64_t D, const T* x, const T* logits, const T* bias,
                 const T* w_gate_up, const T* w_down, T* y) {
  const int64_t F = p.F;
  std::vector<T> h(2 * F), a(F), o(D);
  std::fill_n(y, N * D, T(0));
  for_kept_slots<T>(p, N, logits, bias, [&](int64_t n, int64_t, int32_t e, T w) {
    expert_fwd(D, F, w_gate_up + e * 2 * F * D, w_down + e * D * F, x + n * D, h.data(), a.data(), o.data());
    for (int64_t d = 0; d < D; ++d) y[n * D + d] += w * o[d];
  });
}

template <typename T>
void moe_ref_bwd(const MoeParams& p, int64_t N, int64_t D, const T* x, const T* logits, const T* bias,
                 const T* w_gate_up, const T* w_down, const T* dy, T* dx, T* d_logits, T* d_gate_up, T* d_down) {
  const int64_t F = p.F, k = p.k;
  std::vector<T> h(2 * F), a(F), o(D), da(F), dh(2 * F), d_weight(N * k, T(0));
  std::fill_n(dx, N * D, T(0));
  std::fill_n(d_gate_up, p.E * 2 * F * D, T(0));
  std::fill_n(d_down, p.E * D * F, T(0));
  for_kept_slots<T>(p, N, logits, bias, [&](int64_t n, int64_t j, int32_t e, T w) {
    const T *w1 = w_gate_up + e * 2 * F * D, *w2 = w_down + e * D * F, *xn = x + n * D, *dyn = dy + n * D;
    expert_fwd(D, F, w1, w2, xn, h.data(), a.data(), o.data());
    double dw = 0.0;
    for (int64_t d = 0; d < D; ++d) dw += static_cast<double>(dyn[d]) * o[d];
    d_weight[n * k + j] = static_cast<T>(dw);
    // o = W2 a, y += w o: dW2 += w dy a^T, da = w W2^T dy.
    for (int64_t f = 0; f < F; ++f) {
      double acc = 0.0;
      for (int64_t d = 0; d < D; ++d) acc += static_cast<double>(w2[d * F + f]) * dyn[d];
      da[f] = static_cast<T>(acc) * w;
    }
    for (int64_t d = 0; d < D; ++d)
      for (int64_t f = 0; f < F; ++f) d_down[e * D * F + d * F + f] += w * dyn[d] * a[f];
    for (int64_t f = 0; f < F; ++f) {
      T g = h[f], u = h[F + f], s = sigmoid(g);
      dh[f] = da[f] * u * s * (T(1) + g * (T(1) - s));
      dh[F + f] = da[f] * g * s;
    }
    // h = W1 x: dW1 += dh x^T, dx += W1^T dh.
    for (int64_t i = 0; i < 2 * F; ++i)
      for (int64_t d = 0; d < D; ++d) d_gate_up[e * 2 * F * D + i * D + d] += dh[i] * xn[d];
    for (int64_t d = 0; d < D; ++d) {
      double acc = 0.0;
      for (int64_t i = 0; i < 2 * F; ++i) acc += static_cast<double>(w1[i * D + d]) * dh[i];
      dx[n * D + d] += static_cast<T>(acc);
    }
  });
  std::vector<int32_t> expert(k);
  std::vector<T> weight(k);
  for (int64_t n = 0; n < N; ++n) {
    moe_route_token<T>(p, logits + n * p.E, bias, expert.data(), weight.data());
    moe_route_token_bwd<T>(p, logits + n * p.E, expert.data(), d_weight.data() + n * k, d_logits + n * p.E);
  }
}

template void moe_ref_fwd<double>(const MoeParams&, int64_t, int64_t, const double*, const double*, const double*,
                                  const double*, const double*, double*);
template void moe_ref_fwd<float>(const MoeParams&, int64_t, int64_t, const float*, const float*, const float*,
                                 const float*, const float*, float*);
template void moe_ref_bwd<double>(const MoeParams&, int64_t, int64_t, const double*, const double*, const double*,
                                  const double*, const double*, const double*, double*, double*, double*, double*);

namespace {

// Normalised router probabilities p' of one token ([E]): softmax, or sigmoid scores over their sum.
// Also returns the softmax lse for the z-loss.
template <typename T>
T balance_probs(const MoeParams& p, const T* l, T* q, T* s) {
  T m = *std::max_element(l, l + p.E), sum = 0;
  for (int64_t e = 0; e < p.E; ++e) sum += std::exp(l[e] - m);
  T lse = m + std::log(sum);
  if (p.score == RouterScore::Softmax) {
    for (int64_t e = 0; e < p.E; ++e) q[e] = s[e] = std::exp(l[e] - lse);
    return lse;
  }
  T S = 0;
  for (int64_t e = 0; e < p.E; ++e) S += s[e] = sigmoid(l[e]);
  for (int64_t e = 0; e < p.E; ++e) q[e] = s[e] / S;
  return lse;
}

// Slot fractions f_e = count_e / (n k) over the whole batch (index 0) and per sequence (1 + b).
std::vector<std::vector<double>> slot_fractions(const MoeParams& p, const MoeBalanceParams& b, int64_t N,
                                                const int32_t* expert) {
  const int64_t nb = N / b.T;
  std::vector<std::vector<double>> f(1 + nb, std::vector<double>(p.E, 0.0));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < p.k; ++j) {
      f[0][expert[n * p.k + j]] += 1.0 / static_cast<double>(N * p.k);
      f[1 + n / b.T][expert[n * p.k + j]] += 1.0 / static_cast<double>(b.T * p.k);
    }
  return f;
}

}  // namespace

template <typename T>
void moe_balance_fwd(const MoeParams& p, const MoeBalanceParams& b, int64_t N, const T* logits,
                     const int32_t* expert, T* terms) {
  std::fill_n(terms, 3, T(0));
  if (N == 0) return;
  const int64_t nb = N / b.T, E = p.E;
  auto f = slot_fractions(p, b, N, expert);
  std::array<T, kMoeMaxExperts> q, s;
  double aux = 0.0, z = 0.0, seq = 0.0;
  for (int64_t n = 0; n < N; ++n) {
    T lse = balance_probs(p, logits + n * E, q.data(), s.data());
    z += static_cast<double>(lse) * lse;
    for (int64_t e = 0; e < E; ++e) {
      aux += f[0][e] * q[e];
      seq += f[1 + n / b.T][e] * q[e];
    }
  }
  terms[0] = static_cast<T>(b.aux_coef * E * aux / N);
  terms[1] = static_cast<T>(b.z_coef * z / N);
  terms[2] = static_cast<T>(b.seq_aux_coef * E * seq / (static_cast<double>(b.T) * nb));
}

template <typename T>
void moe_balance_bwd(const MoeParams& p, const MoeBalanceParams& b, int64_t N, const T* logits,
                     const int32_t* expert, const T* d_terms, T* d_logits) {
  if (N == 0) return;
  const int64_t nb = N / b.T, E = p.E;
  auto f = slot_fractions(p, b, N, expert);
  const double c_aux = d_terms[0] * b.aux_coef * E / N;
  const double c_seq = d_terms[2] * b.seq_aux_coef * E / (static_cast<double>(b.T) * nb);
  const double c_z = d_terms[1] * b.z_coef * 2.0 / N;
  std::array<T, kMoeMaxExperts> q, s, dq;
  for (int64_t n = 0; n < N; ++n) {
    const T* l = logits + n * E;
    T* dl = d_logits + n * E;
    T lse = balance_probs(p, l, q.data(), s.data());
    T dot = 0;
    for (int64_t e = 0; e < E; ++e) {
      dq[e] = static_cast<T>(c_aux * f[0][e] + c_seq * f[1 + n / b.T][e]);
      dot += dq[e] * q[e];
    }
    if (p.score == RouterScore::Softmax) {
      for (int64_t e = 0; e < E; ++e) dl[e] = q[e] * (dq[e] - dot);
    } else {
      // q = s / S: ds_e = (dq_e - sum_i dq_i q_i) / S, then the sigmoid's s (1 - s).
      T S = 0;
      for (int64_t e = 0; e < E; ++e) S += s[e];
      for (int64_t e = 0; e < E; ++e) dl[e] = (dq[e] - dot) / S * s[e] * (T(1) - s[e]);
    }
    // z = lse^2: dz/dl = 2 lse softmax(l).
    for (int64_t e = 0; e < E; ++e) dl[e] += static_cast<T>(c_z * lse) * std::exp(l[e] - lse);
  }
}

template void moe_balance_fwd<double>(const MoeParams&, const MoeBalanceParams&, int64_t, const double*,
                                      const int32_t*, double*);
template void moe_balance_fwd<float>(const MoeParams&, const MoeBalanceParams&, int64_t, const float*,
                                     const int32_t*, float*);
template void moe_balance_bwd<double>(const MoeParams&, const MoeBalanceParams&, int64_t, const double*,
                                      const int32_t*, const double*, double*);
template void moe_balance_bwd<float>(const MoeParams&, const MoeBalanceParams&, int64_t, const float*,
                                     const int32_t*, const float*, float*);

}  // namespace speedlm::ops
