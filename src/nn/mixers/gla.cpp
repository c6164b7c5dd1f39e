#include "nn/mixers/gla.h"

#include "autograd/elementwise_functions.h"
#include "autograd/functions.h"
#include "autograd/recurrent_functions.h"
#include "io/json_fields.h"
#include "nn/init.h"
#include "nn/mixers/recurrent_common.h"

namespace speedlm::nn {

Result<GlaMixerParams> GlaMixerParams::parse(const nlohmann::json& cfg, const std::string& path, int64_t d_model) {
  GlaMixerParams p;
  JsonFields f(cfg, path);
  std::string type;
  SPEEDLM_TRY(f.get_string("type", type, {"gla"}, true));
  SPEEDLM_TRY(f.get_int("heads", p.heads, 1, 4096, true));
  p.key_dim = d_model % (2 * p.heads) == 0 ? d_model / (2 * p.heads) : 0;
  SPEEDLM_TRY(f.get_int("key_dim", p.key_dim, 1, 1024, p.key_dim == 0));
  p.value_dim = d_model % p.heads == 0 ? d_model / p.heads : 0;
  SPEEDLM_TRY(f.get_int("value_dim", p.value_dim, 1, 1024, p.value_dim == 0));
  SPEEDLM_TRY(f.get_int("gate_rank", p.gate_rank, 1, 1024));
  SPEEDLM_TRY(f.get_float("gate_norm", p.gate_norm, 1e-3, 1e6));
  SPEEDLM_TRY(f.get_int("chunk", p.chunk, 16, 1024));
  SPEEDLM_TRY(f.get_int("conv", p.conv, 2, 8));
  SPEEDLM_TRY(f.finish());
  return p;
}

GlaMixer::GlaMixer(const GlaMixerParams& p, int64_t d_model) : p_(p), d_model_(d_model) {
  const int64_t HK = p.heads * p.key_dim, HV = p.heads * p.value_dim;
  w_in_ = ag::Var(Tensor::zeros({2 * HK + 2 * HV, d_model}), true);
  w_g1_ = ag::Var(Tensor::zeros({p.gate_rank, d_model}), true);
  w_g2_ = ag::Var(Tensor::zeros({HK, p.gate_rank}), true);
  b_g_ = ag::Var(Tensor::zeros({HK}), true);
  norm_ = ag::Var(Tensor::full({p.value_dim}, 1.0f), true);
  w_o_ = ag::Var(Tensor::zeros({d_model, HV}), true);
  conv_ = ShortConv(2 * HK + HV, p.conv);
}

void GlaMixer::collect_params(const std::string& prefix, ParamList& out) {
  out.push_back({prefix + "w_in", &w_in_, true});
  out.push_back({prefix + "w_g1", &w_g1_, true});
  out.push_back({prefix + "w_g2", &w_g2_, true});
  out.push_back({prefix + "b_g", &b_g_, false});
  out.push_back({prefix + "norm.weight", &norm_, false});
  out.push_back({prefix + "w_o", &w_o_, true});
  conv_.collect_params(prefix, out);
}

void GlaMixer::init(const InitSpec& spec, uint64_t seed) {
  init_normal(w_in_.value(), spec.std, seed, 0);
  init_normal(w_g1_.value(), spec.std, seed, 1);
  init_normal(w_g2_.value(), spec.std, seed, 2);
  init_normal(w_o_.value(), spec.out_std, seed, 3);
  // b_g = 0: the gate starts at logsigmoid(~0) / gate_norm, a decay of about 0.96 per token.
  b_g_.value().zero();
  norm_.value().fill(1.0f);
  conv_.init(seed, 4);
}

ag::Var GlaMixer::forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) {
  const int64_t H = p_.heads, K = p_.key_dim, V = p_.value_dim, N = B * T;
  auto* rs = static_cast<RecurrentState*>(state);
  SPEEDLM_ASSERT(!rs || !ag::grad_enabled() || !x.requires_grad(), "gla with a state is inference only");
  std::vector<ag::Var> parts = conv_.split_qkv(ag::linear(x, w_in_), {H * K, H * K, H * V, H * V}, B, T, rs);
  ag::Var g = ag::log_sigmoid_gate(ag::linear(ag::linear(x, w_g1_), w_g2_), b_g_, 1.0f / static_cast<float>(p_.gate_norm));
  ops::GlaDims d{B, T, H, K, V};
  ops::GlaParams op{0.0f, p_.chunk};
  ag::Var o;
  if (rs) {
    o = ag::Var(gla_with_state(parts[0].value(), parts[1].value(), parts[2].value(), g.value(), d, op, rs->get("ssm")));
    rs->advance(T);
  } else {
    o = ag::gla(parts[0], parts[1], parts[2], g, d, op);
  }
  ag::Var normed = ag::reshape(ag::rmsnorm(ag::reshape(o, {N * H, V}), norm_, 1e-5f), {N, H * V});
  return ag::linear(ag::mul_silu(normed, parts[3]), w_o_);
}

Tensor GlaMixer::step(const Tensor& x, MixerState& state) {
  ag::NoGradGuard guard;
  return forward(ag::Var(x), x.dim(0), 1, &state).value();
}

std::unique_ptr<MixerState> GlaMixer::make_state(int64_t batch) const {
  auto s = std::make_unique<RecurrentState>();
  s->add("ssm", {batch, p_.heads, p_.key_dim, p_.value_dim});
  conv_.add_state(*s, batch);
  return s;
}

}  // namespace speedlm::nn
