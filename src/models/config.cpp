#include "models/config.h"

#include <fstream>
#include <sstream>

#include "io/json_fields.h"
#include "nn/mixer.h"

namespace speedlm {

Result<FfnConfig> FfnConfig::parse(const nlohmann::json& j, const std::string& path) {
  FfnConfig c;
  JsonFields ff(j, path);
  SPEEDLM_TRY(ff.get_string("type", c.type, {"swiglu", "moe", "rwkv_cmix"}, true));
  if (c.type == "moe") {
    auto moe = nn::MoeConfig::parse(ff);
    SPEEDLM_TRY(moe);
    c.moe = *moe;
    c.hidden = c.moe.hidden;
  } else {
    SPEEDLM_TRY(ff.get_int("hidden", c.hidden, 1, 1 << 20, true));
  }
  SPEEDLM_TRY(ff.finish());
  return c;
}

nlohmann::json FfnConfig::to_json() const {
  if (type == "moe") return moe.to_json();
  return {{"type", type}, {"hidden", hidden}};
}

Result<ModelConfig> ModelConfig::from_json(const nlohmann::json& j) {
  ModelConfig c;
  JsonFields f(j, "");
  SPEEDLM_TRY(f.get_int("vocab_size", c.vocab_size, 2, 1 << 24, true));
  SPEEDLM_TRY(f.get_int("d_model", c.d_model, 1, 1 << 16, true));
  SPEEDLM_TRY(f.get_int("n_layers", c.n_layers, 1, 1024, true));
  SPEEDLM_TRY(f.get_bool("tie_embeddings", c.tie_embeddings));
  SPEEDLM_TRY(f.get_float("norm_eps", c.norm_eps, 1e-12, 1.0));
  SPEEDLM_TRY(f.get_float("init_std", c.init_std, 0.0, 10.0));
  SPEEDLM_TRY(f.get_string_list("layers", c.layers, true));
  nlohmann::json mixers;
  SPEEDLM_TRY(f.get_object("mixers", mixers, true));
  for (auto it = mixers.begin(); it != mixers.end(); ++it) {
    SPEEDLM_TRY(nn::validate_mixer_config(it.value(), "mixers." + it.key(), c.d_model));
    c.mixers[it.key()] = it.value();
  }
  for (size_t i = 0; i < c.layers.size(); ++i)
    if (!c.mixers.count(c.layers[i]))
      return f.error("layers", fmt::format("[{}] = \"{}\": no such entry in mixers", i, c.layers[i]));
  if (f.has("ffns") == f.has("ffn"))
    return f.error(f.has("ffn") ? "ffns" : "ffn", ": give either ffn (every layer) or ffns with ffn_layers");
  if (f.has("ffn")) {
    nlohmann::json ffn;
    SPEEDLM_TRY(f.get_object("ffn", ffn, true));
    auto parsed = FfnConfig::parse(ffn, "ffn");
    SPEEDLM_TRY(parsed);
    c.ffn = *parsed;
  } else {
    nlohmann::json ffns;
    SPEEDLM_TRY(f.get_object("ffns", ffns, true));
    for (auto it = ffns.begin(); it != ffns.end(); ++it) {
      auto parsed = FfnConfig::parse(it.value(), "ffns." + it.key());
      SPEEDLM_TRY(parsed);
      c.ffns[it.key()] = *parsed;
    }
    SPEEDLM_TRY(f.get_string_list("ffn_layers", c.ffn_layers, true));
    for (size_t i = 0; i < c.ffn_layers.size(); ++i)
      if (!c.ffns.count(c.ffn_layers[i]))
        return f.error("ffn_layers", fmt::format("[{}] = \"{}\": no such entry in ffns", i, c.ffn_layers[i]));
  }
  SPEEDLM_TRY(f.get_string("objective", c.objective, {"causal_lm"}));
  nlohmann::json train;
  SPEEDLM_TRY(f.get_object("train", train));  // validated by TrainConfig
  SPEEDLM_TRY(f.finish());
  return c;
}

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json j;
  j["vocab_size"] = vocab_size;
  j["d_model"] = d_model;
  j["n_layers"] = n_layers;
  j["tie_embeddings"] = tie_embeddings;
  j["norm_eps"] = norm_eps;
  j["init_std"] = init_std;
  j["layers"] = layers;
  j["mixers"] = mixers;
  if (ffn_layers.empty()) {
    j["ffn"] = ffn.to_json();
  } else {
    for (const auto& [name, f] : ffns) j["ffns"][name] = f.to_json();
    j["ffn_layers"] = ffn_layers;
  }
  j["objective"] = objective;
  return j;
}

Result<nlohmann::json> read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::errorf("config", "{}: cannot open file", path);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    return Status::errorf("config", "{}: invalid JSON: {}", path, e.what());
  }
}

}  // namespace speedlm
