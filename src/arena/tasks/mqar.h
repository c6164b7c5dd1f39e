// MQAR, multi-query associative recall, as the Zoology benchmark defines it (Arora,
// Eyuboglu et al., arXiv 2312.04927; generator HazyResearch/zoology:
// zoology/data/multiquery_ar.py, summarised in research/evaluation.md §1.1). The same
// distribution, not numpy's bit stream:
//   - keys are drawn without replacement from [1, V/2), values without replacement from
//     [V/2, V); token 0 is "empty";
//   - the sequence opens with the pairs k1 v1 ... kN vN (context 2N);
//   - each key then appears once as a query, at offset 2N + 2 gap, the N gaps drawn
//     without replacement from [0, (T - 2N) / 2) with p(gap) proportional to
//     a (gap + 1)^(a - 1), a = power_a = 0.01 (short gaps favoured);
//   - the target at a query position is the key's value; every other target is -100, so
//     the loss and the accuracy count query positions only;
//   - random_non_queries replaces the remaining 0s with uniform tokens from [0, V) (Zoology's
//     default; its Figure 2 grid, which the arena follows, turns it off).
// Preconditions (Zoology's asserts): T even, V > T, 4N <= T.
#pragma once

#include "arena/tasks/task.h"
#include "speedlm/status.h"

namespace speedlm::arena {

struct MqarParams {
  int64_t vocab_size = 8192;
  int64_t seq_len = 64;
  int64_t num_kv_pairs = 4;
  double power_a = 0.01;
  bool random_non_queries = false;
  Status check() const;
};

class MqarTask final : public Task {
 public:
  // p must pass check().
  MqarTask(const MqarParams& p, int64_t batch, uint64_t seed);
  const char* name() const override { return "mqar"; }
  int64_t vocab_size() const override { return p_.vocab_size; }
  int64_t seq_len() const override { return p_.seq_len; }
  data::Batch examples(uint64_t stream, int64_t rows) const override;

 private:
  MqarParams p_;
  std::vector<double> gap_weight_;  // unnormalised p(gap), gap in [0, (T - 2N) / 2)
};

}  // namespace speedlm::arena
