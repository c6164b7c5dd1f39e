// RWKV-7 "Goose" time mix (algorithms.md §6.1; BlinkDL RWKV_Tmix_x070, FLA layers/rwkv7.py), width
// C = d_model, H = C / head_dim heads:
//   d = x_{t-1} - x_t (token shift); x_i = x + d o mu_i for i in r, w, k, v, a, g
//   r = W_r x_r, k = W_k x_k, v = W_v x_v
//   log decay w = -e^{-1/2} sigmoid(w0 + tanh(x_w W1) W2)   (= -exp(-softplus(-.) - 1/2))
//   value residual v <- v + (v_first - v) o sigmoid(v0 + x_v V1 V2), v_first = v of the first
//   rwkv7 layer of the pass (ForwardContext; for that layer the mix is the identity)
//   a = sigmoid(a0 + x_a A1 A2), g = sigmoid(x_g G1) G2
//   kk = L2norm_head(k o k_k); k <- k o (1 + (a - 1) o k_a)
//   o = WKV(r, w, k, v, -kk, kk o a) (ops/linear/rwkv7, scale 1)
//   y = W_o ((GroupNorm_head(o) + (sum_head r o k o r_k) v) o g)
// The channel mix (RWKV's FFN, with its own token shift) is the block's FFN: "ffn": {"type":
// "rwkv_cmix"} (nn/rwkv_cmix.h), its last-token state kept per layer in ModelState::ffn.
// Config: {"type": "rwkv7", "head_dim": 64, "decay_rank": 64, "a_rank": 64, "v_rank": 32,
//          "gate_rank": 128, "chunk": 32}
// Decode state: the WKV state [B, H, P, P] and the last input token [B, C] (token shift).
#pragma once

#include "nn/mixer.h"

namespace speedlm::nn {

struct Rwkv7MixerParams {
  int64_t head_dim = 64, decay_rank = 64, a_rank = 64, v_rank = 32, gate_rank = 128, chunk = 32;
  int64_t heads = 0;  // derived: d_model / head_dim
  static Result<Rwkv7MixerParams> parse(const nlohmann::json& cfg, const std::string& path, int64_t d_model);
};

class Rwkv7Mixer final : public Mixer {
 public:
  Rwkv7Mixer(const Rwkv7MixerParams& p, int64_t d_model);
  const char* type() const override { return "rwkv7"; }
  void collect_params(const std::string& prefix, ParamList& out) override;
  void init(const InitSpec& spec, uint64_t seed) override;
  // Alone (outside a model pass) the layer is its own first layer.
  ag::Var forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) override;
  ag::Var forward_in_pass(const ag::Var& x, int64_t B, int64_t T, MixerState* state, ForwardContext& ctx) override;
  Tensor step(const Tensor& x, MixerState& state) override;
  std::unique_ptr<MixerState> make_state(int64_t batch) const override;
  MemoryKind memory_kind() const override { return MemoryKind::Recurrent; }

 private:
  Rwkv7MixerParams p_;
  int64_t d_model_;
  ag::Var mu_r_, mu_w_, mu_k_, mu_v_, mu_a_, mu_g_;
  ag::Var w_r_, w_k_, w_v_, w_o_;
  ag::Var w0_, w1_, w2_, a0_, a1_, a2_, v0_, v1_, v2_, g1_, g2_;
  ag::Var k_k_, k_a_, r_k_, ln_w_, ln_b_;
};

}  // namespace speedlm::nn
