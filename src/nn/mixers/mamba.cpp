#include "nn/mixers/mamba.h"

#include <cmath>

#include "autograd/elementwise_functions.h"
#include "autograd/functions.h"
#include "autograd/gate_functions.h"
#include "autograd/recurrent_functions.h"
#include "io/json_fields.h"
#include "nn/init.h"
#include "nn/mixers/recurrent_common.h"

namespace speedlm::nn {

Result<MambaMixerParams> MambaMixerParams::parse(const nlohmann::json& cfg, const std::string& path,
                                                 int64_t d_model) {
  MambaMixerParams p;
  JsonFields f(cfg, path);
  std::string type;
  SPEEDLM_TRY(f.get_string("type", type, {"mamba"}, true));
  SPEEDLM_TRY(f.get_int("state_dim", p.state_dim, 1, 1024));
  SPEEDLM_TRY(f.get_int("expand", p.expand, 1, 16));
  SPEEDLM_TRY(f.get_int("conv", p.conv, 2, 8));
  p.dt_rank = (d_model + 15) / 16;
  SPEEDLM_TRY(f.get_int("dt_rank", p.dt_rank, 1, 4096));
  SPEEDLM_TRY(f.get_int("chunk", p.chunk, 1, 4096));
  SPEEDLM_TRY(f.get_float("dt_min", p.dt_min, 1e-6, 10.0));
  SPEEDLM_TRY(f.get_float("dt_max", p.dt_max, p.dt_min, 10.0));
  SPEEDLM_TRY(f.finish());
  p.inner = p.expand * d_model;
  return p;
}

MambaMixer::MambaMixer(const MambaMixerParams& p, int64_t d_model) : p_(p), d_model_(d_model) {
  const int64_t E = p.inner, N = p.state_dim, R = p.dt_rank;
  w_in_ = ag::Var(Tensor::zeros({2 * E, d_model}), true);
  conv_w_ = ag::Var(Tensor::zeros({E, p.conv}), true);
  conv_b_ = ag::Var(Tensor::zeros({E}), true);
  w_x_ = ag::Var(Tensor::zeros({R + 2 * N, E}), true);
  w_dt_ = ag::Var(Tensor::zeros({E, R}), true);
  dt_bias_ = ag::Var(Tensor::zeros({E}), true);
  a_log_ = ag::Var(Tensor::zeros({E, N}), true);
  d_skip_ = ag::Var(Tensor::full({E}, 1.0f), true);
  w_out_ = ag::Var(Tensor::zeros({d_model, E}), true);
}

void MambaMixer::collect_params(const std::string& prefix, ParamList& out) {
  out.push_back({prefix + "w_in", &w_in_, true});
  out.push_back({prefix + "conv.weight", &conv_w_, false});
  out.push_back({prefix + "conv.bias", &conv_b_, false});
  out.push_back({prefix + "w_x", &w_x_, true});
  out.push_back({prefix + "w_dt", &w_dt_, true});
  out.push_back({prefix + "dt_bias", &dt_bias_, false});
  out.push_back({prefix + "A_log", &a_log_, false});
  out.push_back({prefix + "D", &d_skip_, false});
  out.push_back({prefix + "w_out", &w_out_, true});
}

void MambaMixer::init(const InitSpec& spec, uint64_t seed) {
  init_normal(w_in_.value(), spec.std, seed, 0);
  init_normal(conv_w_.value(), 1.0 / std::sqrt(static_cast<double>(p_.conv)), seed, 1);
  init_normal(w_x_.value(), spec.std, seed, 2);
  init_normal(w_out_.value(), spec.out_std, seed, 3);
  conv_b_.value().zero();
  // mamba_simple.py: dt_proj weight U(+-R^-1/2); dt log-uniform in [dt_min, dt_max] stored as
  // softplus^-1 in dt_bias; A_log[d, n] = log(n + 1) (S4D-real); D = 1.
  Rng rng(seed, 4);
  const double bound = 1.0 / std::sqrt(static_cast<double>(p_.dt_rank));
  for (int64_t i = 0; i < w_dt_.value().numel(); ++i)
    w_dt_.value().f32()[i] = static_cast<float>(bound * (2.0 * rng.uniform() - 1.0));
  for (int64_t e = 0; e < p_.inner; ++e) {
    const double dt = std::exp(std::log(p_.dt_min) + rng.uniform() * (std::log(p_.dt_max) - std::log(p_.dt_min)));
    dt_bias_.value().f32()[e] = static_cast<float>(dt + std::log(-std::expm1(-dt)));
    for (int64_t n = 0; n < p_.state_dim; ++n)
      a_log_.value().f32()[e * p_.state_dim + n] = static_cast<float>(std::log(static_cast<double>(n + 1)));
  }
  d_skip_.value().fill(1.0f);
}

ag::Var MambaMixer::forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) {
  const int64_t E = p_.inner, N = p_.state_dim, R = p_.dt_rank;
  std::vector<ag::Var> xz = ag::split_cols(ag::linear(x, w_in_), {E, E});
  const ops::CausalConv1dDims cd{B, T, E, p_.conv};
  RecurrentState* rs = static_cast<RecurrentState*>(state);
  SPEEDLM_ASSERT(!rs || !ag::grad_enabled() || !x.requires_grad(), "mamba with a state is inference only");
  ag::Var u = rs ? ag::Var(conv_with_state(xz[0].value(), conv_w_.value(), conv_b_.value(), cd, {true},
                                           rs->get("conv")))
                 : ag::causal_conv1d(xz[0], conv_w_, conv_b_, cd, {true});
  std::vector<ag::Var> dbc = ag::split_cols(ag::linear(u, w_x_), {R, N, N});
  ag::Var delta = ag::softplus_bias(ag::linear(dbc[0], w_dt_), dt_bias_);
  ag::Var A = ag::neg_exp(a_log_);
  const ops::SelectiveScanDims d{B, T, E, N};
  const ops::SelectiveScanParams op{p_.chunk};
  ag::Var y;
  if (rs) {
    y = ag::Var(selective_scan_with_state(u.value(), delta.value(), A.value(), dbc[1].value(), dbc[2].value(),
                                          d_skip_.value(), d, op, rs->get("ssm")));
    rs->advance(T);
  } else {
    y = ag::selective_scan(u, delta, A, dbc[1], dbc[2], d_skip_, d, op);
  }
  return ag::linear(ag::mul_silu(y, xz[1]), w_out_);
}

Tensor MambaMixer::step(const Tensor& x, MixerState& state) {
  ag::NoGradGuard guard;
  return forward(ag::Var(x), x.dim(0), 1, &state).value();
}

std::unique_ptr<MixerState> MambaMixer::make_state(int64_t batch) const {
  auto s = std::make_unique<RecurrentState>();
  s->add("ssm", {batch, p_.inner, p_.state_dim});
  s->add("conv", {batch, p_.conv - 1, p_.inner});
  return s;
}

}  // namespace speedlm::nn
