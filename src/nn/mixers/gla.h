// Gated linear attention (GLA, Yang et al. 2024) as in FLA's layer: per-key-channel decay
// from a low-rank gate, per-head RMSNorm and a swish output gate.
// Config: {"type": "gla", "heads": H, "key_dim": K (default d_model / (2 H)),
//          "value_dim": V (default d_model / H), "gate_rank": 16, "gate_norm": 16, "chunk": 64,
//          "conv": W (2..8; absent: none)}
// With "conv", q | k | v (not the gates) go through a short conv + SiLU (short_conv.h).
// Weights: w_in [2 H K + 2 H V, D] (q | k | v | output gate rows), w_g1 [rank, D], w_g2 [H K, rank],
// b_g [H K], norm [V], w_o [D, H V]; with conv: conv.weight [2 H K + H V, W], conv.bias [2 H K + H V].
// g = logsigmoid(x W_g1^T W_g2^T + b_g) / gate_norm, o = gla(q, k, v, g),
// y = (rmsnorm_per_head(o) o silu(r)) W_o^T.
#pragma once

#include "nn/mixer.h"
#include "nn/mixers/short_conv.h"

namespace speedlm::nn {

struct GlaMixerParams {
  int64_t heads = 0, key_dim = 0, value_dim = 0, gate_rank = 16, chunk = 64, conv = 0;
  double gate_norm = 16.0;
  static Result<GlaMixerParams> parse(const nlohmann::json& cfg, const std::string& path, int64_t d_model);
};

class GlaMixer final : public Mixer {
 public:
  GlaMixer(const GlaMixerParams& p, int64_t d_model);
  const char* type() const override { return "gla"; }
  void collect_params(const std::string& prefix, ParamList& out) override;
  void init(const InitSpec& spec, uint64_t seed) override;
  ag::Var forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) override;
  Tensor step(const Tensor& x, MixerState& state) override;
  std::unique_ptr<MixerState> make_state(int64_t batch) const override;
  MemoryKind memory_kind() const override { return MemoryKind::Recurrent; }

 private:
  GlaMixerParams p_;
  int64_t d_model_;
  ag::Var w_in_, w_g1_, w_g2_, b_g_, norm_, w_o_;
  ShortConv conv_;
};

}  // namespace speedlm::nn
