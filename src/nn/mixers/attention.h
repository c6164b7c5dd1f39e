// Causal self-attention with GQA/MQA and RoPE (Llama-style, no biases).
// Config: {"type": "attention", "heads": H, "kv_heads": KVH (default H),
//          "head_dim": Dh (default d_model / H), "rope_theta": 10000,
//          "window": W (default 0 = none; a query sees itself and the W - 1 keys before it),
//          "softcap": c (default 0 = none; scores s -> c tanh(s / c)),
//          "sinks": false (a learned logit per head that joins the softmax denominator)}
// Weights: w_qkv [(H + 2 KVH) Dh, D] (q | k | v rows), w_o [D, H Dh], sinks [H] when enabled.
#pragma once

#include "nn/mixer.h"
#include "ops/attention/attention/attention.h"
#include "ops/pos/rope/rope.h"

namespace speedlm::nn {

struct AttentionMixerParams {
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  double rope_theta = 10000.0;
  int64_t window = 0;
  double softcap = 0.0;
  bool sinks = false;
  ops::AttentionParams attention_params() const;
  static Result<AttentionMixerParams> parse(const nlohmann::json& cfg, const std::string& path, int64_t d_model);
};

class AttentionMixer final : public Mixer {
 public:
  AttentionMixer(const AttentionMixerParams& p, int64_t d_model);
  const char* type() const override { return "attention"; }
  void collect_params(const std::string& prefix, ParamList& out) override;
  void init(const InitSpec& spec, uint64_t seed) override;
  ag::Var forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) override;
  Tensor step(const Tensor& x, MixerState& state) override;
  std::unique_ptr<MixerState> make_state(int64_t batch) const override;
  MemoryKind memory_kind() const override { return MemoryKind::GrowingKv; }

 private:
  AttentionMixerParams p_;
  int64_t d_model_;
  ag::Var w_qkv_, w_o_, sinks_;  // sinks_ [H], defined when p_.sinks
};

}  // namespace speedlm::nn
