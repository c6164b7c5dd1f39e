// DeltaNet and Gated DeltaNet (algorithms.md §4, §5.4, §5.5; FLA layers/delta_net.py,
// layers/gated_deltanet.py, Qwen3-Next's linear-attention layer). Per token:
//   q, k, v = SiLU(causal depthwise conv(W_qkv x))        (one conv over q | k | v, kernel W)
//   q, k <- L2-normalised per head (eps 1e-6 in the sqrt); beta = sigmoid(W_b x)
//   gated only: g = -exp(A_log) softplus(W_a x + dt_bias) (log decay per head)
//   o = (gated) delta rule, scale 1/sqrt(K)
//   deltanet:       y = W_o RMSNorm_head(o)                 (FLA DeltaNet, use_gate = false)
//   gated_deltanet: y = W_o (RMSNorm_head(o) o silu(z)), z = W_z x   (norm before gate)
// Config: {"type": "gated_deltanet" | "deltanet", "heads": H, "head_dim": K (d_model / H),
//          "expand_v": 1 (V = expand_v K), "conv": 4, "chunk": 32,
//          gated only: "dt_min": 0.001, "dt_max": 0.1}
// Weights: w_in [2HK + HV (+ HV z) + H (b) (+ H a), D], conv_w [2HK + HV, W], conv_b [2HK + HV]
// (FLA's conv_bias option; Qwen3-Next has none), gated: dt_bias [H], A_log [H]; norm [V] shared
// by the heads; w_out [D, HV]. One head count for q/k and v (no GVA).
#pragma once

#include "nn/mixer.h"
#include "nn/mixers/short_conv.h"

namespace speedlm::nn {

struct DeltaNetMixerParams {
  bool gated = true;
  int64_t heads = 0, head_dim = 0, expand_v = 1, conv = 4, chunk = 32;
  double dt_min = 0.001, dt_max = 0.1;
  int64_t value_dim = 0;  // derived: expand_v * head_dim
  static Result<DeltaNetMixerParams> parse(const nlohmann::json& cfg, const std::string& path, int64_t d_model);
};

class DeltaNetMixer final : public Mixer {
 public:
  DeltaNetMixer(const DeltaNetMixerParams& p, int64_t d_model);
  const char* type() const override { return p_.gated ? "gated_deltanet" : "deltanet"; }
  void collect_params(const std::string& prefix, ParamList& out) override;
  void init(const InitSpec& spec, uint64_t seed) override;
  ag::Var forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) override;
  Tensor step(const Tensor& x, MixerState& state) override;
  std::unique_ptr<MixerState> make_state(int64_t batch) const override;
  MemoryKind memory_kind() const override { return MemoryKind::Recurrent; }

 private:
  DeltaNetMixerParams p_;
  int64_t d_model_;
  ag::Var w_in_, dt_bias_, a_log_, norm_, w_out_;
  ShortConv conv_;
};

}  // namespace speedlm::nn
