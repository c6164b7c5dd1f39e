#include "train/batcher.h"

#include <algorithm>

#include "core/rng.h"

namespace speedlm::data {

namespace {

constexpr const char* kWhere = "batcher";

Status check_sizes(int64_t batch, int64_t seq_len) {
  if (batch < 1) return Status::errorf(kWhere, "batch = {}: must be >= 1", batch);
  if (seq_len < 1) return Status::errorf(kWhere, "seq_len = {}: must be >= 1", seq_len);
  return Status::ok();
}

}  // namespace

Result<Batcher> Batcher::create(std::span<const int32_t> tokens, int64_t batch, int64_t seq_len, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  SPEEDLM_TRY(check_sizes(batch, seq_len));
  if (n <= seq_len)
    return Status::errorf(kWhere, "tokens = {}: must be more than seq_len = {} (a window needs seq_len + 1)", n, seq_len);
  return Batcher(tokens, batch, seq_len, seed);
}

Batch Batcher::at(uint64_t step) const {
  Batch out{Tensor::empty({batch_, seq_len_}, DType::I32), Tensor::empty({batch_, seq_len_}, DType::I32),
            batch_ * seq_len_};
  Rng rng(seed_, step);
  const uint64_t num_starts = tokens_.size() - static_cast<uint64_t>(seq_len_);
  for (int64_t b = 0; b < batch_; ++b) {
    const int32_t* src = tokens_.data() + rng.below(num_starts);
    std::copy(src, src + seq_len_, out.inputs.i32() + b * seq_len_);
    std::copy(src + 1, src + 1 + seq_len_, out.targets.i32() + b * seq_len_);
  }
  return out;
}

Result<std::vector<Batch>> eval_batches(std::span<const int32_t> tokens, int64_t batch, int64_t seq_len,
                                        int32_t ignore_index) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  SPEEDLM_TRY(check_sizes(batch, seq_len));
  if (n < 2) return Status::errorf(kWhere, "tokens = {}: evaluation needs at least 2", n);
  const int64_t num_windows = (n - 1 + seq_len - 1) / seq_len;
  std::vector<Batch> out;
  for (int64_t w0 = 0; w0 < num_windows; w0 += batch) {
    const int64_t rows = std::min(batch, num_windows - w0);
    Batch b{Tensor::empty({rows, seq_len}, DType::I32), Tensor::empty({rows, seq_len}, DType::I32), 0};
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t start = (w0 + r) * seq_len;
      int32_t* in = b.inputs.i32() + r * seq_len;
      int32_t* tg = b.targets.i32() + r * seq_len;
      for (int64_t t = 0; t < seq_len; ++t) {
        const bool valid = start + t + 1 < n;
        in[t] = valid ? tokens[static_cast<size_t>(start + t)] : 0;
        tg[t] = valid ? tokens[static_cast<size_t>(start + t + 1)] : ignore_index;
        b.num_targets += valid;
      }
    }
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace speedlm::data
