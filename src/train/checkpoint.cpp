#include "train/checkpoint.h"

#include "io/atomic_file.h"
#include "io/safetensors.h"

namespace speedlm {

namespace {

Status check_tensor(const io::SafeTensors& st, const std::string& file, const std::string& name, const Tensor& like,
                    Tensor& out) {
  auto it = st.tensors.find(name);
  if (it == st.tensors.end()) return Status::errorf("checkpoint", "{}: missing tensor '{}'", file, name);
  const Tensor& t = it->second;
  if (t.dtype() != DType::F32 || t.shape() != like.shape())
    return Status::errorf("checkpoint", "{}: tensor '{}' is {} {}, expected f32 {}", file, name, dtype_name(t.dtype()),
                          shape_str(t.shape()), shape_str(like.shape()));
  out = t;
  return Status::ok();
}

}  // namespace

Status save_checkpoint(const std::string& dir, const LanguageModel& model, const TrainConfig& tc,
                       const io::BpeTokenizer& tokenizer, AdamW* opt, const TrainerState& state) {
  auto staging = io::make_staging_dir(dir);
  SPEEDLM_TRY(staging);
  const std::string& tmp = *staging;
  nlohmann::json cfg = model.config().to_json();
  cfg["train"] = tc.to_json();
  SPEEDLM_TRY(io::write_file_atomic(tmp + "/config.json", cfg.dump(2) + "\n"));
  io::NamedTensors weights, moments;
  const nn::ParamList& params = model.params();
  for (size_t i = 0; i < params.size(); ++i) {
    weights.push_back({params[i].name, params[i].var->value()});
    if (opt) {
      moments.push_back({"m." + params[i].name, opt->m()[i]});
      moments.push_back({"v." + params[i].name, opt->v()[i]});
    }
  }
  SPEEDLM_TRY(io::write_safetensors(tmp + "/model.safetensors", weights, {{"format", "speedlm"}}));
  if (opt) SPEEDLM_TRY(io::write_safetensors(tmp + "/optimizer.safetensors", moments));
  nlohmann::json ts = {{"step", state.step},
                       {"adam_steps", opt ? opt->steps_taken() : 0},
                       {"batcher_step", state.batcher_step},
                       {"seed", tc.seed},
                       {"losses", state.losses}};
  SPEEDLM_TRY(io::write_file_atomic(tmp + "/trainer_state.json", ts.dump() + "\n"));
  SPEEDLM_TRY(tokenizer.save(tmp + "/tokenizer.json"));
  return io::publish_dir_atomic(tmp, dir);
}

Result<LoadedModel> load_model_dir(const std::string& dir) {
  SPEEDLM_TRY(io::recover_dir(dir));
  auto text = io::read_file(dir + "/config.json");
  SPEEDLM_TRY(text);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(*text);
  } catch (const nlohmann::json::parse_error& e) {
    return Status::errorf("checkpoint", "{}/config.json: invalid JSON: {}", dir, e.what());
  }
  LoadedModel out;
  auto mc = ModelConfig::from_json(j);
  SPEEDLM_TRY(mc);
  out.model_config = *mc;
  auto tc = TrainConfig::from_json(j.contains("train") ? j["train"] : nlohmann::json());
  SPEEDLM_TRY(tc);
  out.train_config = *tc;
  auto tok = io::BpeTokenizer::load(dir + "/tokenizer.json");
  SPEEDLM_TRY(tok);
  out.tokenizer = std::move(*tok);
  if (out.tokenizer.vocab_size() > out.model_config.vocab_size)
    return Status::errorf("checkpoint", "{}: tokenizer has {} tokens but vocab_size = {}", dir,
                          out.tokenizer.vocab_size(), out.model_config.vocab_size);
  std::string file = dir + "/model.safetensors";
  auto st = io::read_safetensors(file);
  SPEEDLM_TRY(st);
  out.model = std::make_unique<LanguageModel>(out.model_config);
  for (const auto& p : out.model->params()) {
    Tensor t;
    SPEEDLM_TRY(check_tensor(*st, file, p.name, p.var->value(), t));
    p.var->value().copy_from(t);
    p.var->value_changed();
  }
  if (st->tensors.size() != out.model->params().size())
    return Status::errorf("checkpoint", "{}: {} tensors, the config has {} parameters", file, st->tensors.size(),
                          out.model->params().size());
  return out;
}

Status load_training_state(const std::string& dir, const LanguageModel& model, AdamW& opt, TrainerState& state) {
  std::string file = dir + "/optimizer.safetensors";
  auto st = io::read_safetensors(file);
  SPEEDLM_TRY(st);
  const nn::ParamList& params = model.params();
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor t;
    SPEEDLM_TRY(check_tensor(*st, file, "m." + params[i].name, opt.m()[i], t));
    opt.m()[i].copy_from(t);
    SPEEDLM_TRY(check_tensor(*st, file, "v." + params[i].name, opt.v()[i], t));
    opt.v()[i].copy_from(t);
  }
  auto text = io::read_file(dir + "/trainer_state.json");
  SPEEDLM_TRY(text);
  try {
    nlohmann::json j = nlohmann::json::parse(*text);
    state.step = j.at("step").get<int64_t>();
    state.batcher_step = j.at("batcher_step").get<int64_t>();
    state.losses = j.at("losses").get<std::vector<float>>();
    opt.set_steps_taken(j.at("adam_steps").get<int64_t>());
  } catch (const nlohmann::json::exception& e) {
    return Status::errorf("checkpoint", "{}/trainer_state.json: {}", dir, e.what());
  }
  return Status::ok();
}

}  // namespace speedlm
