#include "train/train_config.h"

#include "io/json_fields.h"

namespace speedlm {

Result<TrainConfig> TrainConfig::from_json(const nlohmann::json& j) {
  TrainConfig c;
  if (j.is_null()) return c;
  JsonFields f(j, "train");
  SPEEDLM_TRY(f.get_int("batch_size", c.batch_size, 1, 1 << 16));
  SPEEDLM_TRY(f.get_int("seq_len", c.seq_len, 1, 1 << 20));
  SPEEDLM_TRY(f.get_float("lr", c.lr, 0.0, 10.0));
  std::string schedule = LrSchedule::kind_name(c.schedule.kind);
  SPEEDLM_TRY(f.get_string("schedule", schedule, {"cosine", "wsd"}));
  c.schedule.kind = schedule == "wsd" ? LrSchedule::Kind::kWsd : LrSchedule::Kind::kCosine;
  SPEEDLM_TRY(f.get_float("min_lr_ratio", c.schedule.min_lr_ratio, 0.0, 1.0));
  SPEEDLM_TRY(f.get_float("decay_fraction", c.schedule.decay_fraction, 1e-6, 1.0));
  SPEEDLM_TRY(f.get_int("warmup_steps", c.warmup_steps, 0, 1LL << 40));
  SPEEDLM_TRY(f.get_int("steps", c.steps, 1, 1LL << 40));
  SPEEDLM_TRY(f.get_float("weight_decay", c.weight_decay, 0.0, 10.0));
  SPEEDLM_TRY(f.get_float("beta1", c.beta1, 0.0, 0.999999));
  SPEEDLM_TRY(f.get_float("beta2", c.beta2, 0.0, 0.999999999));
  SPEEDLM_TRY(f.get_float("eps", c.eps, 0.0, 1.0));
  SPEEDLM_TRY(f.get_float("grad_clip", c.grad_clip, 0.0, 1e9));
  int64_t seed = static_cast<int64_t>(c.seed);
  SPEEDLM_TRY(f.get_int("seed", seed, 0, INT64_MAX));
  c.seed = static_cast<uint64_t>(seed);
  SPEEDLM_TRY(f.get_int("eval_every", c.eval_every, 0, 1LL << 40));
  SPEEDLM_TRY(f.get_int("eval_tokens", c.eval_tokens, 0, 1LL << 40));
  SPEEDLM_TRY(f.get_int("checkpoint_every", c.checkpoint_every, 0, 1LL << 40));
  SPEEDLM_TRY(f.get_int("log_every", c.log_every, 1, 1LL << 40));
  SPEEDLM_TRY(f.finish());
  return c;
}

nlohmann::json TrainConfig::to_json() const {
  return {{"batch_size", batch_size}, {"seq_len", seq_len}, {"lr", lr},
          {"schedule", LrSchedule::kind_name(schedule.kind)}, {"min_lr_ratio", schedule.min_lr_ratio},
          {"decay_fraction", schedule.decay_fraction},
          {"warmup_steps", warmup_steps}, {"steps", steps}, {"weight_decay", weight_decay}, {"beta1", beta1},
          {"beta2", beta2}, {"eps", eps}, {"grad_clip", grad_clip}, {"seed", seed}, {"eval_every", eval_every},
          {"eval_tokens", eval_tokens}, {"checkpoint_every", checkpoint_every}, {"log_every", log_every}};
}

}  // namespace speedlm
