#include "train/evaluate.h"

#include <cmath>

#include "autograd/functions.h"
#include "core/parallel.h"
#include "speedlm/speedlm.h"
#include "train/batcher.h"
#include "train/checkpoint.h"
#include "train/dataset.h"

namespace speedlm {

EvalResult evaluate_bpb(LanguageModel& model, std::span<const int32_t> val, int64_t val_bytes, int64_t seq_len,
                        int64_t batch, int64_t max_tokens) {
  ag::NoGradGuard guard;
  EvalResult r;
  std::span<const int32_t> part = val;
  if (max_tokens > 0 && static_cast<int64_t>(val.size()) > max_tokens + 1) part = val.first(max_tokens + 1);
  auto batches = data::eval_batches(part, batch, seq_len);
  if (!batches) return r;
  model.take_moe_load();  // count only the evaluated tokens
  double nats = 0.0;
  for (const data::Batch& b : *batches) {
    ag::Var loss = model.loss(b.inputs, b.targets);
    nats += static_cast<double>(loss.value().f32()[0]) * static_cast<double>(b.num_targets);
    r.tokens += b.num_targets;
  }
  r.moe_load = model.take_moe_load();
  if (r.tokens == 0) return r;
  r.loss = nats / static_cast<double>(r.tokens);
  // The targets cover their share of the split's bytes.
  double bytes = static_cast<double>(val_bytes) * static_cast<double>(r.tokens) / static_cast<double>(val.size() - 1);
  r.bpb = nats / std::log(2.0) / bytes;
  return r;
}

std::string format_moe_load(int64_t layer, const nn::MoeLoad& load) {
  std::string experts;
  for (size_t e = 0; e < load.routed.size(); ++e)
    experts += fmt::format(" {:.1f}", 100.0 * load.fraction(static_cast<int64_t>(e)));
  return fmt::format("layer {}: max/mean {:.2f}, dropped {:.1f}%, experts{} %", layer, load.max_over_mean(),
                     100.0 * load.dropped_fraction(), experts);
}

Result<EvalReport> evaluate(const std::string& model_dir, const std::string& data_dir, int64_t max_tokens,
                            int threads) {
  if (threads > 0) set_num_threads(threads);
  if (max_tokens < 0) return Status::errorf("eval", "--max-tokens = {}: must be >= 0", max_tokens);
  auto loaded = load_model_dir(model_dir);
  SPEEDLM_TRY(loaded);
  auto ds = data::load_dataset(data_dir);
  SPEEDLM_TRY(ds);
  if (ds->tokenizer.to_json() != loaded->tokenizer.to_json())
    return Status::errorf("eval", "{} was tokenized with another tokenizer than the model in {}", data_dir, model_dir);
  const TrainConfig& tc = loaded->train_config;
  EvalResult r = evaluate_bpb(*loaded->model, ds->val, ds->meta.val_bytes, tc.seq_len, tc.batch_size, max_tokens);
  EvalReport report{r.bpb, r.loss, r.tokens, {}};
  for (const auto& [layer, load] : r.moe_load) {
    MoeLoadReport m{layer, {}, load.max_over_mean(), load.dropped_fraction()};
    for (size_t e = 0; e < load.routed.size(); ++e) m.fraction.push_back(load.fraction(static_cast<int64_t>(e)));
    report.moe_load.push_back(std::move(m));
  }
  return report;
}

}  // namespace speedlm
