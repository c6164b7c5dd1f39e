#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace speedlm {

Status validate_sampler(const SamplerParams& p) {
  if (!(p.temperature >= 0.0) || p.temperature > 100.0)
    return Status::errorf("sampler", "temperature = {}: must be in [0, 100]", p.temperature);
  if (p.top_k < 0) return Status::errorf("sampler", "top_k = {}: must be >= 0", p.top_k);
  if (!(p.top_p > 0.0 && p.top_p <= 1.0)) return Status::errorf("sampler", "top_p = {}: must be in (0, 1]", p.top_p);
  if (!(p.repetition_penalty >= 1.0 && p.repetition_penalty <= 10.0))
    return Status::errorf("sampler", "repetition_penalty = {}: must be in [1, 10]", p.repetition_penalty);
  if (p.repetition_window < 0) return Status::errorf("sampler", "repetition_window = {}: must be >= 0", p.repetition_window);
  return Status::ok();
}

int32_t Sampler::sample(float* logits, int64_t V, const std::vector<int32_t>& history) {
  if (p_.repetition_penalty != 1.0) {
    std::unordered_set<int32_t> seen;
    size_t start = history.size() > static_cast<size_t>(p_.repetition_window) ? history.size() - p_.repetition_window : 0;
    for (size_t i = start; i < history.size(); ++i) seen.insert(history[i]);
    float pen = static_cast<float>(p_.repetition_penalty);
    for (int32_t t : seen)
      if (t >= 0 && t < V) logits[t] = logits[t] > 0 ? logits[t] / pen : logits[t] * pen;
  }
  if (p_.temperature == 0.0) return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);

  // Candidates sorted by logit (descending, ties by id), cut by top-k, then softmax and top-p.
  scratch_.resize(V);
  for (int64_t i = 0; i < V; ++i) scratch_[i] = {logits[i], static_cast<int32_t>(i)};
  int64_t k = p_.top_k > 0 ? std::min<int64_t>(p_.top_k, V) : V;
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  std::partial_sort(scratch_.begin(), scratch_.begin() + k, scratch_.end(), by_logit);
  scratch_.resize(k);
  double inv_t = 1.0 / p_.temperature, max_l = scratch_[0].first, total = 0.0;
  std::vector<double> prob(k);
  for (int64_t i = 0; i < k; ++i) total += prob[i] = std::exp((scratch_[i].first - max_l) * inv_t);
  int64_t keep = k;
  double cum = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    cum += prob[i] / total;
    if (cum >= p_.top_p) {
      keep = i + 1;
      break;
    }
  }
  double mass = 0.0;
  for (int64_t i = 0; i < keep; ++i) mass += prob[i];
  double r = rng_.uniform() * mass;
  for (int64_t i = 0; i < keep; ++i) {
    r -= prob[i];
    if (r < 0) return scratch_[i].second;
  }
  return scratch_[keep - 1].second;
}

}  // namespace speedlm
