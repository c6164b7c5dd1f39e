// Tiny MoE model configs shared by the MoE model tests.
#pragma once

#include <nlohmann/json.hpp>

#include "models/config.h"

namespace speedlm::testing {

// A dense layer, then a Mixtral-like MoE layer (softmax top-2 of 4, balancing losses on).
inline nlohmann::json tiny_moe_config_json() {
  return nlohmann::json::parse(R"({
    "vocab_size": 97, "d_model": 32, "n_layers": 2, "tie_embeddings": true, "init_std": 0.1,
    "layers": ["attn"],
    "mixers": {"attn": {"type": "attention", "heads": 4, "kv_heads": 2, "head_dim": 8}},
    "ffns": {"dense": {"type": "swiglu", "hidden": 48},
             "moe": {"type": "moe", "experts": 4, "top_k": 2, "hidden": 24,
                     "aux_loss_coef": 0.01, "z_loss_coef": 0.001}},
    "ffn_layers": ["dense", "moe"]
  })");
}

// DeepSeek-like on every layer: sigmoid router with bias, group-limited, a shared expert.
inline nlohmann::json tiny_deepseek_config_json() {
  return nlohmann::json::parse(R"({
    "vocab_size": 97, "d_model": 32, "n_layers": 2, "tie_embeddings": true, "init_std": 0.1,
    "layers": ["attn"],
    "mixers": {"attn": {"type": "attention", "heads": 4, "kv_heads": 2, "head_dim": 8}},
    "ffn": {"type": "moe", "experts": 8, "top_k": 3, "hidden": 12, "shared_experts": 1, "router": "sigmoid",
            "route_scale": 2.5, "groups": 4, "topk_groups": 2, "bias_update_rate": 0.01,
            "seq_aux_loss_coef": 0.001}
  })");
}

inline ModelConfig tiny_moe_config() { return ModelConfig::from_json(tiny_moe_config_json()).value(); }
inline ModelConfig tiny_deepseek_config() { return ModelConfig::from_json(tiny_deepseek_config_json()).value(); }

}  // namespace speedlm::testing
