#include "train/evaluate.h"

#include <algorithm>
#include <cmath>

#include "autograd/functions.h"

namespace speedlm {

EvalResult evaluate_bpb(LanguageModel& model, std::span<const int32_t> val, int64_t val_bytes, int64_t seq_len,
                        int64_t batch, int64_t max_tokens) {
  ag::NoGradGuard guard;
  int64_t windows = (static_cast<int64_t>(val.size()) - 1) / seq_len;
  if (max_tokens > 0) windows = std::min(windows, std::max<int64_t>(1, max_tokens / seq_len));
  double nats = 0.0;
  int64_t tokens = 0;
  for (int64_t w0 = 0; w0 < windows; w0 += batch) {
    int64_t B = std::min(batch, windows - w0);
    Tensor x = Tensor::empty({B, seq_len}, DType::I32), y = Tensor::empty({B * seq_len}, DType::I32);
    for (int64_t b = 0; b < B; ++b) {
      const int32_t* src = val.data() + (w0 + b) * seq_len;
      std::copy_n(src, seq_len, x.i32() + b * seq_len);
      std::copy_n(src + 1, seq_len, y.i32() + b * seq_len);
    }
    ag::Var loss = ag::cross_entropy(model.forward(x), y, ops::CrossEntropyParams{});
    nats += static_cast<double>(loss.value().f32()[0]) * static_cast<double>(B * seq_len);
    tokens += B * seq_len;
  }
  EvalResult r;
  r.tokens = tokens;
  if (tokens == 0) return r;
  r.loss = nats / static_cast<double>(tokens);
  double bytes = static_cast<double>(val_bytes) * static_cast<double>(tokens) / static_cast<double>(val.size());
  r.bpb = nats / std::log(2.0) / bytes;
  return r;
}

}  // namespace speedlm
