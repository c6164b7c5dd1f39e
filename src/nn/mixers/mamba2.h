// Mamba-2 (SSD) block (algorithms.md §8): in-projection to z, x, B, C, dt; causal depthwise
// conv + SiLU over (x | B | C); dt = softplus(dt + dt_bias); A = -exp(A_log) per head;
// multi-head SSD through simple_gla (q = C, k = B, v = dt x, g = dt A, scale 1) plus the D skip;
// gated RMSNorm y = rmsnorm(y o silu(z)); out-projection.
// Config: {"type": "mamba2", "head_dim": P (64), "state_dim": N (64), "expand": 2, "groups": 1,
//          "conv": 4, "chunk": 64, "dt_min": 0.001, "dt_max": 0.1}
// heads H = expand * d_model / P. Weights: w_in [2 E + 2 G N + H, D] (z | x | B | C | dt rows,
// E = expand * d_model), conv_w [E + 2 G N, W], conv_b [E + 2 G N], dt_bias [H], A_log [H],
// D [H], norm [E], w_out [D, E].
#pragma once

#include "nn/mixer.h"

namespace speedlm::nn {

struct Mamba2MixerParams {
  int64_t head_dim = 64, state_dim = 64, expand = 2, groups = 1, conv = 4, chunk = 64;
  double dt_min = 0.001, dt_max = 0.1;
  int64_t inner = 0, heads = 0;  // derived: expand * d_model, inner / head_dim
  static Result<Mamba2MixerParams> parse(const nlohmann::json& cfg, const std::string& path, int64_t d_model);
};

class Mamba2Mixer final : public Mixer {
 public:
  Mamba2Mixer(const Mamba2MixerParams& p, int64_t d_model);
  const char* type() const override { return "mamba2"; }
  void collect_params(const std::string& prefix, ParamList& out) override;
  void init(const InitSpec& spec, uint64_t seed) override;
  ag::Var forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) override;
  Tensor step(const Tensor& x, MixerState& state) override;
  std::unique_ptr<MixerState> make_state(int64_t batch) const override;
  MemoryKind memory_kind() const override { return MemoryKind::Recurrent; }

 private:
  Mamba2MixerParams p_;
  int64_t d_model_;
  ag::Var w_in_, conv_w_, conv_b_, dt_bias_, a_log_, d_skip_, norm_, w_out_;
};

}  // namespace speedlm::nn
