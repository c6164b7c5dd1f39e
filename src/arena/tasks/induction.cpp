#include "arena/tasks/induction.h"

#include <algorithm>

#include "core/rng.h"

namespace speedlm::arena {

Status InductionParams::check() const {
  if (vocab_size < 3) return Status::errorf("induction", "vocab_size = {}: must be >= 3", vocab_size);
  if (seq_len < 4) return Status::errorf("induction", "seq_len = {}: must be >= 4", seq_len);
  return Status::ok();
}

InductionTask::InductionTask(const InductionParams& p, int64_t batch, uint64_t seed) : Task(batch, seed), p_(p) {
  SPEEDLM_ASSERT(p.check().is_ok(), "{}", p.check().message());
}

data::Batch InductionTask::examples(uint64_t stream, int64_t rows) const {
  const int64_t T = p_.seq_len, V = p_.vocab_size;
  const int32_t prefix = static_cast<int32_t>(V - 1);
  data::Batch out{Tensor::empty({rows, T}, DType::I32), Tensor::empty({rows, T}, DType::I32), rows};
  Rng rng(seed_, stream);
  for (int64_t r = 0; r < rows; ++r) {
    int32_t* x = out.inputs.i32() + r * T;
    int32_t* y = out.targets.i32() + r * T;
    for (int64_t t = 0; t < T; ++t) x[t] = static_cast<int32_t>(rng.below(V - 1));
    std::fill(y, y + T, kIgnore);
    const int64_t p = static_cast<int64_t>(rng.below(T - 2));
    x[p] = prefix;
    x[T - 1] = prefix;
    y[T - 1] = x[p + 1];
  }
  return out;
}

}  // namespace speedlm::arena
