// Batches of token windows for training and evaluation.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "speedlm/status.h"
#include "speedlm/tensor.h"

namespace speedlm::data {

// targets[b, t] is the token after inputs[b, t], or ignore_index where there is none
// (padding in the last evaluation window).
struct Batch {
  Tensor inputs;        // [B, T] i32
  Tensor targets;       // [B, T] i32
  int64_t num_targets;  // targets that are not ignore_index
};

// Where training batches come from: the corpus Batcher, or a synthetic task's generator
// (arena/). Batches are a pure function of (seed, step), so resuming needs only step().
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual Batch at(uint64_t step) const = 0;
  Batch next() { return at(step_++); }
  uint64_t step() const { return step_; }
  void set_step(uint64_t step) { step_ = step; }

 private:
  uint64_t step_ = 0;
};

// Training batches: row b of step s is the window tokens[start, start + T + 1) with start
// drawn uniformly from [0, N - T - 1] by the counter-based Rng at (seed, stream s, counter b).
// So a batch is a pure function of (seed, step): resuming needs only step(), and at(s)
// gives any step's batch without moving. `tokens` must outlive the Batcher.
class Batcher final : public BatchSource {
 public:
  // Needs batch >= 1, seq_len >= 1 and at least seq_len + 1 tokens.
  static Result<Batcher> create(std::span<const int32_t> tokens, int64_t batch, int64_t seq_len, uint64_t seed);

  Batch at(uint64_t step) const override;
  int64_t batch() const { return batch_; }
  int64_t seq_len() const { return seq_len_; }

 private:
  Batcher(std::span<const int32_t> tokens, int64_t batch, int64_t seq_len, uint64_t seed)
      : tokens_(tokens), batch_(batch), seq_len_(seq_len), seed_(seed) {}

  std::span<const int32_t> tokens_;
  int64_t batch_;
  int64_t seq_len_;
  uint64_t seed_;
};

// Evaluation batches: non-overlapping windows in order, window w taking inputs
// tokens[w * T, w * T + T) and targets one token later, `batch` windows per batch. Every
// token after the first is a target exactly once (the first has no context). Positions past
// the last target are padding (input 0, target ignore_index), and the last batch may have
// fewer rows. Needs batch >= 1, seq_len >= 1 and at least 2 tokens.
Result<std::vector<Batch>> eval_batches(std::span<const int32_t> tokens, int64_t batch, int64_t seq_len,
                                        int32_t ignore_index = -100);

}  // namespace speedlm::data
