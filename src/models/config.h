// ModelConfig: a model as data, parsed from JSON and validated against its schema
// (unknown keys and bad values are errors naming the key path and the value).
//   { "vocab_size": 4096, "d_model": 384, "n_layers": 4, "tie_embeddings": true,
//     "norm_eps": 1e-5, "init_std": 0.02,
//     "layers": ["attn"],                      // repeats to n_layers
//     "mixers": {"attn": {"type": "attention", "heads": 6, "kv_heads": 2, "head_dim": 64}},
//     "ffn": {"type": "swiglu", "hidden": 1024},  // every layer; or per layer:
//     "ffns": {"dense": {"type": "swiglu", ...}, "moe": {"type": "moe", ...}},
//     "ffn_layers": ["dense", "moe"],             // repeats to n_layers, like "layers"
//     "objective": "causal_lm",
//     "train": {...} }                         // training section, see train/train_config.h
// FFN types: "swiglu" {"hidden"}; "moe" (nn/moe.h); "rwkv_cmix" {"hidden"}, RWKV-7's channel mix
// (nn/rwkv_cmix.h), which keeps a decoding state (the last token, ModelState::ffn).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/moe.h"
#include "speedlm/status.h"

namespace speedlm {

struct FfnConfig {
  std::string type = "swiglu";  // swiglu | moe | rwkv_cmix
  int64_t hidden = 0;           // swiglu / rwkv_cmix width (moe: moe.hidden)
  nn::MoeConfig moe;
  static Result<FfnConfig> parse(const nlohmann::json& j, const std::string& path);
  nlohmann::json to_json() const;
};

struct ModelConfig {
  int64_t vocab_size = 0;
  int64_t d_model = 0;
  int64_t n_layers = 0;
  bool tie_embeddings = true;
  double norm_eps = 1e-5;
  double init_std = 0.02;
  std::vector<std::string> layers;
  std::map<std::string, nlohmann::json> mixers;
  FfnConfig ffn;                            // every layer's FFN, unless ffn_layers is set
  std::map<std::string, FfnConfig> ffns;    // named FFNs for ffn_layers
  std::vector<std::string> ffn_layers;      // repeats to n_layers
  std::string objective = "causal_lm";

  // The mixer config of layer i (layers repeats to n_layers).
  const nlohmann::json& layer_mixer(int64_t i) const { return mixers.at(layers[i % layers.size()]); }
  const FfnConfig& layer_ffn(int64_t i) const {
    return ffn_layers.empty() ? ffn : ffns.at(ffn_layers[i % ffn_layers.size()]);
  }
  nlohmann::json to_json() const;
  static Result<ModelConfig> from_json(const nlohmann::json& j);
};

// Reads and parses a JSON file; errors name the file (and line/column on a syntax error).
Result<nlohmann::json> read_json_file(const std::string& path);

}  // namespace speedlm
