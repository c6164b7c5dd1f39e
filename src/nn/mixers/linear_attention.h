// Linear attention (Katharopoulos et al. 2020): S_t = S_{t-1} + phi(k_t) v_t^T,
// o_t = S_t^T phi(q_t) (simple_gla with no gate), optionally normalised by <phi(q_t), z_t>,
// z_t = sum_{s<=t} phi(k_s), computed as one more value column of ones (simple_gla/README.md).
// Config: {"type": "linear_attention", "heads": H, "key_dim": K (default d_model / H),
//          "value_dim": V (default d_model / H), "feature_map": "elu" | "identity",
//          "normalize": true, "chunk": 64, "conv": W (2..8; absent: none)}
// With "conv", q | k | v go through a short conv + SiLU (short_conv.h) before the feature map.
// Weights: w_in [2 H K + H V, D] (q | k | v rows), w_o [D, H V]; with conv: conv.weight [2 H K + H V, W],
// conv.bias [2 H K + H V].
#pragma once

#include "nn/mixer.h"
#include "nn/mixers/short_conv.h"

namespace speedlm::nn {

struct LinearAttentionMixerParams {
  int64_t heads = 0, key_dim = 0, value_dim = 0, chunk = 64, conv = 0;
  std::string feature_map = "elu";
  bool normalize = true;
  static Result<LinearAttentionMixerParams> parse(const nlohmann::json& cfg, const std::string& path,
                                                  int64_t d_model);
};

class LinearAttentionMixer final : public Mixer {
 public:
  LinearAttentionMixer(const LinearAttentionMixerParams& p, int64_t d_model);
  const char* type() const override { return "linear_attention"; }
  void collect_params(const std::string& prefix, ParamList& out) override;
  void init(const InitSpec& spec, uint64_t seed) override;
  ag::Var forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) override;
  Tensor step(const Tensor& x, MixerState& state) override;
  std::unique_ptr<MixerState> make_state(int64_t batch) const override;
  MemoryKind memory_kind() const override { return MemoryKind::Recurrent; }

 private:
  int64_t state_value_dim() const { return p_.value_dim + (p_.normalize ? 1 : 0); }
  LinearAttentionMixerParams p_;
  int64_t d_model_;
  ag::Var w_in_, w_o_;
  ShortConv conv_;
};

}  // namespace speedlm::nn
