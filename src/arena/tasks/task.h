// A synthetic arena task: a generator of training batches (a BatchSource, so the training
// step is the corpus one) and a fixed test set. Targets are ignore_index (-100) everywhere
// except the positions the task scores, so the loss and the accuracy see only those.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "train/batcher.h"

namespace speedlm::arena {

constexpr int32_t kIgnore = -100;

class Task : public data::BatchSource {
 public:
  virtual const char* name() const = 0;
  // Tokens the task uses: ids are in [0, vocab_size()).
  virtual int64_t vocab_size() const = 0;
  virtual int64_t seq_len() const = 0;
  // `rows` examples drawn from stream `stream` (training batches use stream = step; test
  // sets use streams past any training step), a pure function of (seed, stream).
  virtual data::Batch examples(uint64_t stream, int64_t rows) const = 0;
  data::Batch at(uint64_t step) const override { return examples(step, batch_); }
  // The fixed test set: `rows` examples from streams reserved for testing.
  std::vector<data::Batch> test_set(int64_t rows) const;
  // A fixed validation set (early stopping), from streams disjoint from training and test.
  std::vector<data::Batch> validation_set(int64_t rows) const;

 protected:
  Task(int64_t batch, uint64_t seed) : batch_(batch), seed_(seed) {}
  int64_t batch_;
  uint64_t seed_;
};

// Mean over examples of the fraction of an example's scored positions (target != -100)
// whose argmax logit equals the target (Zoology's compute_metrics: per-example accuracy
// averaged over examples). logits: [B*T, V]  targets: [B, T].
struct AccuracySum {
  double sum = 0.0;  // sum of per-example accuracies
  int64_t examples = 0;
  double mean() const { return examples ? sum / static_cast<double>(examples) : 0.0; }
};
void add_accuracy(const float* logits, int64_t V, const data::Batch& batch, AccuracySum& acc);

}  // namespace speedlm::arena
