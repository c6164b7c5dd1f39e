// MoE feed-forward: router (x W_r^T), k of E routed SwiGLU experts (ops/moe), optional
// shared experts (one dense SwiGLU of width shared_experts * shared_hidden, applied to every
// token), balancing losses for training and the auxiliary-loss-free bias update.
//   {"type": "moe", "experts": 8, "top_k": 2, "hidden": 512, "shared_experts": 0,
//    "router": "softmax" | "sigmoid", "renormalize": true, "route_scale": 1.0,
//    "groups": 1, "topk_groups": 1, "capacity_factor": 0,
//    "aux_loss_coef": 0, "z_loss_coef": 0, "seq_aux_loss_coef": 0, "bias_update_rate": 0}
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/var.h"
#include "io/json_fields.h"
#include "nn/mixer.h"
#include "nn/param.h"
#include "ops/moe/moe.h"

namespace speedlm::nn {

struct MoeConfig {
  int64_t experts = 8, top_k = 2, hidden = 0;
  int64_t shared_experts = 0, shared_hidden = 0;  // shared_hidden 0: hidden
  std::string router = "softmax";
  bool renormalize = true;
  double route_scale = 1.0;
  int64_t groups = 1, topk_groups = 1;
  double capacity_factor = 0.0;
  double aux_loss_coef = 0.0, z_loss_coef = 0.0, seq_aux_loss_coef = 0.0;
  double bias_update_rate = 0.0;  // gamma of b_e += gamma * sign(mean load - load_e), after each step

  ops::MoeParams op_params() const;
  // Reads every key but "type" from f (the ffn object), validating ranges and combinations.
  static Result<MoeConfig> parse(JsonFields& f);
  nlohmann::json to_json() const;
};

// Routed slots per expert accumulated over forwards.
struct MoeLoad {
  std::vector<int64_t> routed;  // [E]
  int64_t dropped = 0;
  int64_t slots() const;
  double fraction(int64_t e) const;  // share of the routed slots
  double max_over_mean() const;      // 1 at perfect balance
  double dropped_fraction() const;
};

class MoE {
 public:
  MoE(const MoeConfig& cfg, int64_t d_model);
  void collect_params(const std::string& prefix, ParamList& out);
  void init(const InitSpec& spec, uint64_t seed);
  // x: [B*T, D] -> [B*T, D], T tokens per sequence. With grad on, also records the balancing
  // losses (take_aux_loss).
  ag::Var forward(const ag::Var& x, int64_t T);
  // Sum of the balancing losses recorded since the last call (undefined when none).
  ag::Var take_aux_loss();
  // The load since the last call (every forward, inference included).
  MoeLoad take_load();
  // b_e += rate * sign(mean - load_e) over the training forwards since the last update.
  void update_bias();
  const ag::Var& bias() const { return bias_; }
  // Parameters one token uses: router, k experts, shared experts.
  int64_t active_params() const;
  int64_t num_params() const;

 private:
  MoeConfig cfg_;
  ops::MoeParams p_;
  int64_t d_model_;
  ag::Var router_, bias_, w_gate_up_, w_down_, shared_gate_up_, shared_down_;
  ag::Var aux_;
  MoeLoad load_;
  std::vector<int64_t> train_counts_;
};

}  // namespace speedlm::nn
