// Mamba-1 block (algorithms.md §7.1, mamba_ssm/modules/mamba_simple.py): in-projection to x, z
// (E = expand * d_model each); causal depthwise conv + SiLU on x; x_proj to (dt_low, B, C);
// delta = softplus(W_dt dt_low + dt_bias); A = -exp(A_log) [E, N]; selective scan with D skip;
// y o silu(z); out-projection. Decode (§7.4) keeps the conv window and the [E, N] scan state.
// Config: {"type": "mamba", "state_dim": N (16), "expand": 2, "conv": 4, "dt_rank": R
//          (ceil(d_model / 16)), "chunk": 64, "dt_min": 0.001, "dt_max": 0.1}
// Weights: w_in [2E, D] (x | z rows), conv_w [E, W], conv_b [E], w_x [R + 2N, E] (dt | B | C
// rows), w_dt [E, R], dt_bias [E], A_log [E, N], D [E], w_out [D, E].
#pragma once

#include "nn/mixer.h"

namespace speedlm::nn {

struct MambaMixerParams {
  int64_t state_dim = 16, expand = 2, conv = 4, dt_rank = 0, chunk = 64;
  double dt_min = 0.001, dt_max = 0.1;
  int64_t inner = 0;  // derived: expand * d_model
  static Result<MambaMixerParams> parse(const nlohmann::json& cfg, const std::string& path, int64_t d_model);
};

class MambaMixer final : public Mixer {
 public:
  MambaMixer(const MambaMixerParams& p, int64_t d_model);
  const char* type() const override { return "mamba"; }
  void collect_params(const std::string& prefix, ParamList& out) override;
  void init(const InitSpec& spec, uint64_t seed) override;
  ag::Var forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) override;
  Tensor step(const Tensor& x, MixerState& state) override;
  std::unique_ptr<MixerState> make_state(int64_t batch) const override;
  MemoryKind memory_kind() const override { return MemoryKind::Recurrent; }

 private:
  MambaMixerParams p_;
  int64_t d_model_;
  ag::Var w_in_, conv_w_, conv_b_, w_x_, w_dt_, dt_bias_, a_log_, d_skip_, w_out_;
};

}  // namespace speedlm::nn
