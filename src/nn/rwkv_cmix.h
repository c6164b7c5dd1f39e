// RWKV-7 channel mix, the FFN of an RWKV block (algorithms.md §6.1; BlinkDL RWKV_CMix_x070,
// FLA RWKV7FeedForward), on the block's normed input x [B*T, D]:
//   d = x_{t-1} - x_t (token shift; x_{-1} = 0 at a sequence start, else the carried last row)
//   k = relu(W_k (x + d o mu_k))^2       W_k: [F, D], F = hidden
//   y = W_v k                            W_v: [D, F]
// Config: {"type": "rwkv_cmix", "hidden": 4 * d_model}.
// Unlike SwiGLU and MoE it has decoding state: the last input row of each sequence [B, D]
// (a RecurrentState holding one tensor "shift"), constant in the context length.
#pragma once

#include <memory>
#include <string>

#include "autograd/var.h"
#include "memory/mixer_state.h"
#include "nn/mixer.h"
#include "nn/param.h"

namespace speedlm::nn {

class RwkvChannelMix {
 public:
  RwkvChannelMix(int64_t d_model, int64_t hidden);
  void collect_params(const std::string& prefix, ParamList& out);
  // layer of n_layers sets mu_k's depth-dependent ratio.
  void init(const InitSpec& spec, uint64_t seed, int64_t layer, int64_t n_layers);
  // x: [B*T, D] -> [B*T, D]. With a state the T tokens continue it and their last row is kept;
  // the carried row is a constant (no gradient flows into earlier calls).
  ag::Var forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state);
  std::unique_ptr<MixerState> make_state(int64_t batch) const;

 private:
  int64_t d_model_, hidden_;
  ag::Var mu_k_;       // [D]
  ag::Var w_k_, w_v_;  // [F, D], [D, F]
};

}  // namespace speedlm::nn
