// Selective copying as in the Mamba paper (Gu & Dao, arXiv 2312.00752, Appendix E.1), the
// generator of state-spaces/s4: src/dataloaders/datasets/copying.py,
// torch_copying_data(L, M, A, variable=True) (research/evaluation.md §1.2):
//   - M data tokens drawn uniformly from [1, A - 2] are scattered, in order, into M random
//     distinct positions of the first L + M slots; the other slots hold 0 (noise);
//   - M markers (token A - 1) follow; the sequence is L + 2M tokens;
//   - as a causal LM, the target at the j-th marker is the j-th data token; every other
//     target is -100. Accuracy is over the M marker positions.
// The paper's setting: L + M = 4096 scattered slots, A = 16, M = 16 (seq_len counts the
// markers too, so seq_len = L + 2M).
#pragma once

#include "arena/tasks/task.h"
#include "speedlm/status.h"

namespace speedlm::arena {

struct CopyParams {
  int64_t vocab_size = 16;  // A: noise 0, data [1, A - 2], marker A - 1
  int64_t seq_len = 256;    // L + 2M
  int64_t num_tokens = 16;  // M
  Status check() const;
};

class CopyTask final : public Task {
 public:
  CopyTask(const CopyParams& p, int64_t batch, uint64_t seed);
  const char* name() const override { return "copy"; }
  int64_t vocab_size() const override { return p_.vocab_size; }
  int64_t seq_len() const override { return p_.seq_len; }
  data::Batch examples(uint64_t stream, int64_t rows) const override;

 private:
  CopyParams p_;
};

}  // namespace speedlm::arena
