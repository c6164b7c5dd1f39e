#include "arena/tasks/copy_task.h"

#include <algorithm>

#include "core/rng.h"

namespace speedlm::arena {

Status CopyParams::check() const {
  if (vocab_size < 3) return Status::errorf("copy", "vocab_size = {}: must be >= 3 (noise, data, marker)", vocab_size);
  if (num_tokens < 1) return Status::errorf("copy", "num_tokens = {}: must be >= 1", num_tokens);
  if (seq_len < 2 * num_tokens)
    return Status::errorf("copy", "seq_len = {}: must be >= 2 num_tokens = {}", seq_len, 2 * num_tokens);
  return Status::ok();
}

CopyTask::CopyTask(const CopyParams& p, int64_t batch, uint64_t seed) : Task(batch, seed), p_(p) {
  SPEEDLM_ASSERT(p.check().is_ok(), "{}", p.check().message());
}

data::Batch CopyTask::examples(uint64_t stream, int64_t rows) const {
  const int64_t T = p_.seq_len, M = p_.num_tokens, A = p_.vocab_size, slots = T - M;
  data::Batch out{Tensor::empty({rows, T}, DType::I32), Tensor::empty({rows, T}, DType::I32), rows * M};
  Rng rng(seed_, stream);
  std::vector<int64_t> pos(static_cast<size_t>(slots));
  for (int64_t r = 0; r < rows; ++r) {
    int32_t* x = out.inputs.i32() + r * T;
    int32_t* y = out.targets.i32() + r * T;
    std::fill(x, x + slots, 0);
    std::fill(x + slots, x + T, static_cast<int32_t>(A - 1));
    std::fill(y, y + T, kIgnore);
    // M distinct slots (partial Fisher-Yates), then sorted: the data keep their order.
    for (int64_t i = 0; i < slots; ++i) pos[i] = i;
    for (int64_t i = 0; i < M; ++i) std::swap(pos[i], pos[i + static_cast<int64_t>(rng.below(slots - i))]);
    std::sort(pos.begin(), pos.begin() + M);
    for (int64_t j = 0; j < M; ++j) {
      const int32_t token = static_cast<int32_t>(1 + rng.below(A - 2));
      x[pos[j]] = token;
      y[slots + j] = token;
    }
  }
  return out;
}

}  // namespace speedlm::arena
