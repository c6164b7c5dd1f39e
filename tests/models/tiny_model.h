// Tiny model configs shared by the model tests.
#pragma once

#include <nlohmann/json.hpp>

#include "models/config.h"

namespace speedlm::testing {

inline nlohmann::json tiny_config_json() {
  return nlohmann::json::parse(R"({
    "vocab_size": 97, "d_model": 32, "n_layers": 2, "tie_embeddings": true, "init_std": 0.1,
    "layers": ["attn"],
    "mixers": {"attn": {"type": "attention", "heads": 4, "kv_heads": 2, "head_dim": 8}},
    "ffn": {"type": "swiglu", "hidden": 48}
  })");
}

inline ModelConfig tiny_config() { return ModelConfig::from_json(tiny_config_json()).value(); }

}  // namespace speedlm::testing
