#include "nn/mixers/delta_net.h"

#include <cmath>

#include "autograd/elementwise_functions.h"
#include "autograd/functions.h"
#include "autograd/gate_functions.h"
#include "autograd/recurrent_functions.h"
#include "io/json_fields.h"
#include "nn/init.h"
#include "nn/mixers/recurrent_common.h"

namespace speedlm::nn {

Result<DeltaNetMixerParams> DeltaNetMixerParams::parse(const nlohmann::json& cfg, const std::string& path,
                                                       int64_t d_model) {
  DeltaNetMixerParams p;
  JsonFields f(cfg, path);
  std::string type;
  SPEEDLM_TRY(f.get_string("type", type, {"deltanet", "gated_deltanet"}, true));
  p.gated = type == "gated_deltanet";
  SPEEDLM_TRY(f.get_int("heads", p.heads, 1, 4096, true));
  p.head_dim = d_model % p.heads == 0 ? d_model / p.heads : 0;
  SPEEDLM_TRY(f.get_int("head_dim", p.head_dim, 1, 1024, p.head_dim == 0));
  SPEEDLM_TRY(f.get_int("expand_v", p.expand_v, 1, 8));
  SPEEDLM_TRY(f.get_int("conv", p.conv, 2, 8));
  SPEEDLM_TRY(f.get_int("chunk", p.chunk, 1, 128));
  if (p.gated) {
    SPEEDLM_TRY(f.get_float("dt_min", p.dt_min, 1e-6, 10.0));
    SPEEDLM_TRY(f.get_float("dt_max", p.dt_max, p.dt_min, 10.0));
  }
  SPEEDLM_TRY(f.finish());
  p.value_dim = p.expand_v * p.head_dim;
  return p;
}

DeltaNetMixer::DeltaNetMixer(const DeltaNetMixerParams& p, int64_t d_model) : p_(p), d_model_(d_model) {
  const int64_t H = p.heads, HK = H * p.head_dim, HV = H * p.value_dim, C = 2 * HK + HV;
  const int64_t rows = p.gated ? C + HV + 2 * H : C + H;
  w_in_ = ag::Var(Tensor::zeros({rows, d_model}), true);
  conv_ = ShortConv(C, p.conv);
  if (p.gated) {
    dt_bias_ = ag::Var(Tensor::zeros({H}), true);
    a_log_ = ag::Var(Tensor::zeros({H}), true);
  }
  norm_ = ag::Var(Tensor::full({p.value_dim}, 1.0f), true);
  w_out_ = ag::Var(Tensor::zeros({d_model, HV}), true);
}

void DeltaNetMixer::collect_params(const std::string& prefix, ParamList& out) {
  out.push_back({prefix + "w_in", &w_in_, true});
  conv_.collect_params(prefix, out);
  if (p_.gated) {
    out.push_back({prefix + "dt_bias", &dt_bias_, false});
    out.push_back({prefix + "A_log", &a_log_, false});
  }
  out.push_back({prefix + "norm.weight", &norm_, false});
  out.push_back({prefix + "w_out", &w_out_, true});
}

void DeltaNetMixer::init(const InitSpec& spec, uint64_t seed) {
  init_normal(w_in_.value(), spec.std, seed, 0);
  conv_.init(seed, 1);
  init_normal(w_out_.value(), spec.out_std, seed, 2);
  norm_.value().fill(1.0f);
  if (!p_.gated) return;
  // FLA: dt log-uniform in [dt_min, dt_max] stored as softplus^-1 in dt_bias; A = U(1, 16)
  // (FLA draws U(0, 16); the lower bound 1 keeps log(A) finite).
  Rng rng(seed, 3);
  for (int64_t h = 0; h < p_.heads; ++h) {
    const double dt = std::exp(std::log(p_.dt_min) + rng.uniform() * (std::log(p_.dt_max) - std::log(p_.dt_min)));
    dt_bias_.value().f32()[h] = static_cast<float>(dt + std::log(-std::expm1(-dt)));
    a_log_.value().f32()[h] = static_cast<float>(std::log(1.0 + 15.0 * rng.uniform()));
  }
}

ag::Var DeltaNetMixer::forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) {
  const int64_t H = p_.heads, K = p_.head_dim, V = p_.value_dim, N = B * T;
  const int64_t HK = H * K, HV = H * V;
  std::vector<int64_t> widths = {HK, HK, HV, H};
  if (p_.gated) widths = {HK, HK, HV, H, HV, H};
  RecurrentState* rs = static_cast<RecurrentState*>(state);
  SPEEDLM_ASSERT(!rs || !ag::grad_enabled() || !x.requires_grad(), "{} with a state is inference only", type());
  // parts: q | k | v (after the conv), beta, then gate and a when gated.
  const std::vector<ag::Var> parts = conv_.conv_qkv(ag::linear(x, w_in_), widths, B, T, rs);
  const std::vector<ag::Var> qkv = ag::l2norm_qk_split(parts[0], H, K, V, 1e-6f);
  const ag::Var &q = qkv[0], &k = qkv[1], &v = qkv[2];
  ag::Var beta = ag::sigmoid(parts[1]);
  ag::Var g = p_.gated ? ag::gdn_gate(parts[3], dt_bias_, a_log_) : ag::Var();
  const ops::GatedDeltaRuleDims d{B, T, H, K, V};
  const ops::GatedDeltaRuleParams op{0.0f, p_.chunk};
  ag::Var o;
  if (rs) {
    o = ag::Var(gated_delta_rule_with_state(q.value(), k.value(), v.value(), beta.value(),
                                            p_.gated ? g.value().f32() : nullptr, d, op, rs->get("ssm")));
    rs->advance(T);
  } else {
    o = ag::gated_delta_rule(q, k, v, beta, g, d, op);
  }
  ag::Var normed = ag::reshape(ag::rmsnorm(ag::reshape(o, {N * H, V}), norm_, 1e-5f), {N, HV});
  return ag::linear(p_.gated ? ag::mul_silu(normed, parts[2]) : normed, w_out_);
}

Tensor DeltaNetMixer::step(const Tensor& x, MixerState& state) {
  ag::NoGradGuard guard;
  return forward(ag::Var(x), x.dim(0), 1, &state).value();
}

std::unique_ptr<MixerState> DeltaNetMixer::make_state(int64_t batch) const {
  auto s = std::make_unique<RecurrentState>();
  s->add("ssm", {batch, p_.heads, p_.head_dim, p_.value_dim});
  conv_.add_state(*s, batch);
  return s;
}

}  // namespace speedlm::nn
