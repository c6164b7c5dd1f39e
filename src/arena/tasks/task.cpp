#include "arena/tasks/task.h"

#include <algorithm>

namespace speedlm::arena {

namespace {
// Validation and test streams start far past any training step, and far from each other, so
// their examples never repeat a training batch or each other.
constexpr uint64_t kValidationStream = uint64_t{1} << 61;
constexpr uint64_t kTestStream = uint64_t{1} << 62;
constexpr int64_t kTestBatch = 16;  // logits of a batch are [16 T, V]: small enough at V = 8192

std::vector<data::Batch> fixed_set(const Task& task, uint64_t first_stream, int64_t rows) {
  std::vector<data::Batch> out;
  for (int64_t r = 0, i = 0; r < rows; r += kTestBatch, ++i)
    out.push_back(task.examples(first_stream + static_cast<uint64_t>(i), std::min(kTestBatch, rows - r)));
  return out;
}
}  // namespace

std::vector<data::Batch> Task::test_set(int64_t rows) const { return fixed_set(*this, kTestStream, rows); }

std::vector<data::Batch> Task::validation_set(int64_t rows) const { return fixed_set(*this, kValidationStream, rows); }

void add_accuracy(const float* logits, int64_t V, const data::Batch& batch, AccuracySum& acc) {
  const int64_t B = batch.targets.dim(0), T = batch.targets.dim(1);
  for (int64_t b = 0; b < B; ++b) {
    int64_t scored = 0, correct = 0;
    for (int64_t t = 0; t < T; ++t) {
      int32_t y = batch.targets.i32()[b * T + t];
      if (y == kIgnore) continue;
      const float* row = logits + (b * T + t) * V;
      ++scored;
      correct += std::max_element(row, row + V) - row == y;
    }
    if (scored == 0) continue;
    acc.sum += static_cast<double>(correct) / static_cast<double>(scored);
    ++acc.examples;
  }
}

}  // namespace speedlm::arena
