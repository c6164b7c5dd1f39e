#include "arena/tasks/mqar.h"

#include <cmath>

#include "core/rng.h"

namespace speedlm::arena {

namespace {

// k distinct integers from [lo, hi), in draw order (a partial Fisher-Yates shuffle).
std::vector<int32_t> distinct(Rng& rng, int64_t lo, int64_t hi, int64_t k) {
  std::vector<int32_t> pool(static_cast<size_t>(hi - lo));
  for (int64_t i = 0; i < hi - lo; ++i) pool[i] = static_cast<int32_t>(lo + i);
  for (int64_t i = 0; i < k; ++i) std::swap(pool[i], pool[i + static_cast<int64_t>(rng.below(hi - lo - i))]);
  pool.resize(static_cast<size_t>(k));
  return pool;
}

// k distinct indices drawn one at a time with probability proportional to w among those
// not yet drawn (numpy's choice(replace=False, p=w) has this distribution).
std::vector<int64_t> weighted_distinct(Rng& rng, std::vector<double> w, int64_t k) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < k; ++i) {
    double total = 0.0;
    for (double x : w) total += x;
    double u = static_cast<double>(rng.uniform()) * total;
    int64_t pick = -1;
    for (size_t j = 0; j < w.size(); ++j) {
      if (w[j] == 0.0) continue;
      pick = static_cast<int64_t>(j);  // the last candidate absorbs rounding at the top
      if ((u -= w[j]) < 0.0) break;
    }
    out.push_back(pick);
    w[static_cast<size_t>(pick)] = 0.0;
  }
  return out;
}

}  // namespace

Status MqarParams::check() const {
  if (seq_len < 4 || seq_len % 2 != 0) return Status::errorf("mqar", "seq_len = {}: must be even and >= 4", seq_len);
  if (vocab_size <= seq_len)
    return Status::errorf("mqar", "vocab_size = {}: must be greater than seq_len = {}", vocab_size, seq_len);
  if (num_kv_pairs < 1 || 4 * num_kv_pairs > seq_len)
    return Status::errorf("mqar", "num_kv_pairs = {}: must be in [1, seq_len / 4 = {}]", num_kv_pairs, seq_len / 4);
  if (!(power_a > 0.0 && power_a <= 1.0)) return Status::errorf("mqar", "power_a = {}: must be in (0, 1]", power_a);
  return Status::ok();
}

MqarTask::MqarTask(const MqarParams& p, int64_t batch, uint64_t seed) : Task(batch, seed), p_(p) {
  SPEEDLM_ASSERT(p.check().is_ok(), "{}", p.check().message());
  const int64_t space = (p.seq_len - 2 * p.num_kv_pairs) / 2;
  for (int64_t i = 1; i <= space; ++i) gap_weight_.push_back(p.power_a * std::pow(static_cast<double>(i), p.power_a - 1.0));
}

data::Batch MqarTask::examples(uint64_t stream, int64_t rows) const {
  const int64_t T = p_.seq_len, N = p_.num_kv_pairs, V = p_.vocab_size, context = 2 * N;
  data::Batch out{Tensor::empty({rows, T}, DType::I32), Tensor::empty({rows, T}, DType::I32), rows * N};
  Rng rng(seed_, stream);
  for (int64_t r = 0; r < rows; ++r) {
    int32_t* x = out.inputs.i32() + r * T;
    int32_t* y = out.targets.i32() + r * T;
    std::fill(x, x + T, 0);
    std::fill(y, y + T, kIgnore);
    std::vector<int32_t> keys = distinct(rng, 1, V / 2, N), values = distinct(rng, V / 2, V, N);
    std::vector<int64_t> gaps = weighted_distinct(rng, gap_weight_, N);
    for (int64_t i = 0; i < N; ++i) {
      x[2 * i] = keys[i], x[2 * i + 1] = values[i];
      const int64_t q = context + 2 * gaps[i];
      x[q] = keys[i];
      y[q] = values[i];
    }
    if (p_.random_non_queries)
      for (int64_t t = 0; t < T; ++t)
        if (x[t] == 0) x[t] = static_cast<int32_t>(rng.below(V));
  }
  return out;
}

}  // namespace speedlm::arena
