#include "nn/rwkv_cmix.h"

#include <cmath>
#include <cstring>

#include "autograd/elementwise_functions.h"
#include "autograd/functions.h"
#include "autograd/rwkv_functions.h"
#include "memory/recurrent_state.h"
#include "nn/init.h"

namespace speedlm::nn {

RwkvChannelMix::RwkvChannelMix(int64_t d_model, int64_t hidden) : d_model_(d_model), hidden_(hidden) {
  mu_k_ = ag::Var(Tensor::zeros({d_model}), true);
  w_k_ = ag::Var(Tensor::zeros({hidden, d_model}), true);
  w_v_ = ag::Var(Tensor::zeros({d_model, hidden}), true);
}

void RwkvChannelMix::collect_params(const std::string& prefix, ParamList& out) {
  out.push_back({prefix + "w_k", &w_k_, true});
  out.push_back({prefix + "w_v", &w_v_, true});
  out.push_back({prefix + "x_k", &mu_k_, false});
}

void RwkvChannelMix::init(const InitSpec& spec, uint64_t seed, int64_t layer, int64_t n_layers) {
  init_normal(w_k_.value(), spec.std, seed, 0);
  // W_v takes out_std like every projection into the residual stream (BlinkDL zeroes it; a
  // nonzero start gives W_k a gradient from the first step, as SwiGLU's w_down does).
  init_normal(w_v_.value(), spec.out_std, seed, 1);
  // BlinkDL's ratio: mu_k[c] = 1 - (c / D)^(r^4), r = 1 - layer / n_layers. The first layer mixes
  // in from all (c = 0) to almost none of the previous token; deeper layers mix in less.
  const double r4 = std::pow(1.0 - static_cast<double>(layer) / static_cast<double>(n_layers), 4.0);
  for (int64_t c = 0; c < d_model_; ++c)
    mu_k_.value().f32()[c] =
        static_cast<float>(1.0 - std::pow(static_cast<double>(c) / static_cast<double>(d_model_), r4));
}

ag::Var RwkvChannelMix::forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) {
  const int64_t D = d_model_;
  RecurrentState* rs = static_cast<RecurrentState*>(state);
  ag::Var d = ag::token_shift(x, B, T, rs ? rs->get("shift") : Tensor());
  ag::Var y = ag::linear(ag::relu_square(ag::linear(ag::addcmul_row(x, d, mu_k_), w_k_)), w_v_);
  if (rs) {
    // token_shift has read the carried rows; now keep this call's last row of each sequence.
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(rs->get("shift").f32() + b * D, x.value().f32() + ((b + 1) * T - 1) * D, sizeof(float) * D);
    rs->advance(T);
  }
  return y;
}

std::unique_ptr<MixerState> RwkvChannelMix::make_state(int64_t batch) const {
  auto s = std::make_unique<RecurrentState>();
  s->add("shift", {batch, d_model_});
  return s;
}

}  // namespace speedlm::nn
