// Induction heads as in the Mamba paper (Gu & Dao, arXiv 2312.00752, Appendix E.1; the H3
// task, generator HazyResearch/safari: src/dataloaders/synthetics.py,
// generate_induction_head with one trigger and induction_len = 1; research/evaluation.md §1.2):
//   - T - 1 content tokens drawn uniformly from [0, V - 1); token V - 1 is the special
//     copy prefix and appears nowhere else;
//   - the prefix is placed once at a uniform position p in [0, T - 3]; the token after it
//     (p + 1, content) is the answer;
//   - the sequence ends with the prefix (position T - 1), whose target is the answer; all
//     other targets are -100, so only the final token is scored.
// The paper trains at T = 256 with V = 16 (chance 1/15 here: the prefix is never an answer).
#pragma once

#include "arena/tasks/task.h"
#include "speedlm/status.h"

namespace speedlm::arena {

struct InductionParams {
  int64_t vocab_size = 16;
  int64_t seq_len = 256;
  Status check() const;
};

class InductionTask final : public Task {
 public:
  InductionTask(const InductionParams& p, int64_t batch, uint64_t seed);
  const char* name() const override { return "induction"; }
  int64_t vocab_size() const override { return p_.vocab_size; }
  int64_t seq_len() const override { return p_.seq_len; }
  data::Batch examples(uint64_t stream, int64_t rows) const override;

 private:
  InductionParams p_;
};

}  // namespace speedlm::arena
