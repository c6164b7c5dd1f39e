// Multi-scale retention (RetNet, Sun et al. 2023) as in FLA's layer: simple_gla with a fixed
// decay per head, log gamma_h = log(1 - 2^(-5-h)), per-head RMSNorm (the group norm) and a
// swish output gate. No xPos rotation: the decay is the positional signal.
// Config: {"type": "retnet", "heads": H, "key_dim": K (default d_model / H),
//          "value_dim": V (default 2 d_model / H), "chunk": 64, "conv": W (2..8; absent: none)}
// With "conv", q | k | v (not the gate) go through a short conv + SiLU (short_conv.h).
// Weights: w_in [2 H K + 2 H V, D] (q | k | v | gate rows), norm [V], w_o [D, H V]; with conv:
// conv.weight [2 H K + H V, W], conv.bias [2 H K + H V].
#pragma once

#include "nn/mixer.h"
#include "nn/mixers/short_conv.h"

namespace speedlm::nn {

struct RetnetMixerParams {
  int64_t heads = 0, key_dim = 0, value_dim = 0, chunk = 64, conv = 0;
  static Result<RetnetMixerParams> parse(const nlohmann::json& cfg, const std::string& path, int64_t d_model);
};

class RetnetMixer final : public Mixer {
 public:
  RetnetMixer(const RetnetMixerParams& p, int64_t d_model);
  const char* type() const override { return "retnet"; }
  void collect_params(const std::string& prefix, ParamList& out) override;
  void init(const InitSpec& spec, uint64_t seed) override;
  ag::Var forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) override;
  Tensor step(const Tensor& x, MixerState& state) override;
  std::unique_ptr<MixerState> make_state(int64_t batch) const override;
  MemoryKind memory_kind() const override { return MemoryKind::Recurrent; }

 private:
  RetnetMixerParams p_;
  int64_t d_model_;
  ag::Var w_in_, norm_, w_o_;
  ShortConv conv_;
};

}  // namespace speedlm::nn
