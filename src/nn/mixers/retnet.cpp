#include "nn/mixers/retnet.h"

#include <cmath>

#include "autograd/elementwise_functions.h"
#include "autograd/functions.h"
#include "autograd/recurrent_functions.h"
#include "io/json_fields.h"
#include "nn/init.h"
#include "nn/mixers/recurrent_common.h"

namespace speedlm::nn {

Result<RetnetMixerParams> RetnetMixerParams::parse(const nlohmann::json& cfg, const std::string& path,
                                                   int64_t d_model) {
  RetnetMixerParams p;
  JsonFields f(cfg, path);
  std::string type;
  SPEEDLM_TRY(f.get_string("type", type, {"retnet"}, true));
  SPEEDLM_TRY(f.get_int("heads", p.heads, 1, 4096, true));
  p.key_dim = d_model % p.heads == 0 ? d_model / p.heads : 0;
  SPEEDLM_TRY(f.get_int("key_dim", p.key_dim, 1, 1024, p.key_dim == 0));
  p.value_dim = (2 * d_model) % p.heads == 0 ? 2 * d_model / p.heads : 0;
  SPEEDLM_TRY(f.get_int("value_dim", p.value_dim, 1, 2048, p.value_dim == 0));
  SPEEDLM_TRY(f.get_int("chunk", p.chunk, 1, 1024));
  SPEEDLM_TRY(f.get_int("conv", p.conv, 2, 8));
  SPEEDLM_TRY(f.finish());
  return p;
}

RetnetMixer::RetnetMixer(const RetnetMixerParams& p, int64_t d_model) : p_(p), d_model_(d_model) {
  const int64_t HK = p.heads * p.key_dim, HV = p.heads * p.value_dim;
  w_in_ = ag::Var(Tensor::zeros({2 * HK + 2 * HV, d_model}), true);
  norm_ = ag::Var(Tensor::full({p.value_dim}, 1.0f), true);
  w_o_ = ag::Var(Tensor::zeros({d_model, HV}), true);
  conv_ = ShortConv(2 * HK + HV, p.conv);
}

void RetnetMixer::collect_params(const std::string& prefix, ParamList& out) {
  out.push_back({prefix + "w_in", &w_in_, true});
  out.push_back({prefix + "norm.weight", &norm_, false});
  out.push_back({prefix + "w_o", &w_o_, true});
  conv_.collect_params(prefix, out);
}

void RetnetMixer::init(const InitSpec& spec, uint64_t seed) {
  init_normal(w_in_.value(), spec.std, seed, 0);
  init_normal(w_o_.value(), spec.out_std, seed, 1);
  norm_.value().fill(1.0f);
  conv_.init(seed, 2);
}

ag::Var RetnetMixer::forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) {
  const int64_t H = p_.heads, K = p_.key_dim, V = p_.value_dim, N = B * T;
  auto* rs = static_cast<RecurrentState*>(state);
  SPEEDLM_ASSERT(!rs || !ag::grad_enabled() || !x.requires_grad(), "retnet with a state is inference only");
  std::vector<ag::Var> parts = conv_.split_qkv(ag::linear(x, w_in_), {H * K, H * K, H * V, H * V}, B, T, rs);
  Tensor g = Tensor::empty({N, H});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < H; ++h) g.f32()[n * H + h] = static_cast<float>(std::log1p(-std::exp2(-5.0 - h)));
  ops::SimpleGlaDims d{B, T, H, K, V};
  ops::SimpleGlaParams op{0.0f, p_.chunk};
  ag::Var o;
  if (rs) {
    o = ag::Var(simple_gla_with_state(parts[0].value(), parts[1].value(), parts[2].value(), g.f32(), d, op,
                                      rs->get("ssm")));
    rs->advance(T);
  } else {
    o = ag::simple_gla(parts[0], parts[1], parts[2], ag::Var(g), d, op);
  }
  ag::Var normed = ag::reshape(ag::rmsnorm(ag::reshape(o, {N * H, V}), norm_, 1e-5f), {N, H * V});
  return ag::linear(ag::mul_silu(normed, parts[3]), w_o_);
}

Tensor RetnetMixer::step(const Tensor& x, MixerState& state) {
  ag::NoGradGuard guard;
  return forward(ag::Var(x), x.dim(0), 1, &state).value();
}

std::unique_ptr<MixerState> RetnetMixer::make_state(int64_t batch) const {
  auto s = std::make_unique<RecurrentState>();
  s->add("ssm", {batch, p_.heads, p_.key_dim, p_.value_dim});
  conv_.add_state(*s, batch);
  return s;
}

}  // namespace speedlm::nn
