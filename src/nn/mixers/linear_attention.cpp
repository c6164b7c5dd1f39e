#include "nn/mixers/linear_attention.h"

#include "autograd/elementwise_functions.h"
#include "autograd/functions.h"
#include "autograd/recurrent_functions.h"
#include "io/json_fields.h"
#include "nn/init.h"
#include "nn/mixers/recurrent_common.h"

namespace speedlm::nn {

namespace {
// Keeps the normaliser away from 0 (phi = elu + 1 makes it positive; identity may not).
constexpr float kNormEps = 1e-6f;
}  // namespace

Result<LinearAttentionMixerParams> LinearAttentionMixerParams::parse(const nlohmann::json& cfg,
                                                                     const std::string& path, int64_t d_model) {
  LinearAttentionMixerParams p;
  JsonFields f(cfg, path);
  std::string type;
  SPEEDLM_TRY(f.get_string("type", type, {"linear_attention"}, true));
  SPEEDLM_TRY(f.get_int("heads", p.heads, 1, 4096, true));
  p.key_dim = d_model % p.heads == 0 ? d_model / p.heads : 0;
  SPEEDLM_TRY(f.get_int("key_dim", p.key_dim, 1, 1024, p.key_dim == 0));
  p.value_dim = p.key_dim;
  SPEEDLM_TRY(f.get_int("value_dim", p.value_dim, 1, 1024));
  SPEEDLM_TRY(f.get_string("feature_map", p.feature_map, {"elu", "identity"}));
  SPEEDLM_TRY(f.get_bool("normalize", p.normalize));
  SPEEDLM_TRY(f.get_int("chunk", p.chunk, 1, 1024));
  SPEEDLM_TRY(f.get_int("conv", p.conv, 2, 8));
  SPEEDLM_TRY(f.finish());
  return p;
}

LinearAttentionMixer::LinearAttentionMixer(const LinearAttentionMixerParams& p, int64_t d_model)
    : p_(p), d_model_(d_model) {
  const int64_t HK = p.heads * p.key_dim, HV = p.heads * p.value_dim;
  w_in_ = ag::Var(Tensor::zeros({2 * HK + HV, d_model}), true);
  w_o_ = ag::Var(Tensor::zeros({d_model, HV}), true);
  conv_ = ShortConv(2 * HK + HV, p.conv);
}

void LinearAttentionMixer::collect_params(const std::string& prefix, ParamList& out) {
  out.push_back({prefix + "w_in", &w_in_, true});
  out.push_back({prefix + "w_o", &w_o_, true});
  conv_.collect_params(prefix, out);
}

void LinearAttentionMixer::init(const InitSpec& spec, uint64_t seed) {
  init_normal(w_in_.value(), spec.std, seed, 0);
  init_normal(w_o_.value(), spec.out_std, seed, 1);
  conv_.init(seed, 2);
}

ag::Var LinearAttentionMixer::forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) {
  const int64_t H = p_.heads, K = p_.key_dim, V = p_.value_dim;
  auto* rs = static_cast<RecurrentState*>(state);
  SPEEDLM_ASSERT(!rs || !ag::grad_enabled() || !x.requires_grad(), "linear attention with a state is inference only");
  std::vector<ag::Var> parts = conv_.split_qkv(ag::linear(x, w_in_), {H * K, H * K, H * V}, B, T, rs);
  ag::Var q = parts[0], k = parts[1], v = parts[2];
  if (p_.feature_map == "elu") q = ag::elu_plus_one(q), k = ag::elu_plus_one(k);
  if (p_.normalize) v = ag::append_ones(v, H, V);
  ops::SimpleGlaDims d{B, T, H, K, state_value_dim()};
  ops::SimpleGlaParams op{0.0f, p_.chunk};
  ag::Var o;
  if (rs) {
    o = ag::Var(simple_gla_with_state(q.value(), k.value(), v.value(), nullptr, d, op, rs->get("ssm")));
    rs->advance(T);
  } else {
    o = ag::simple_gla(q, k, v, ag::Var(), d, op);
  }
  if (p_.normalize) o = ag::divide_by_last(o, H, V, kNormEps);
  return ag::linear(o, w_o_);
}

Tensor LinearAttentionMixer::step(const Tensor& x, MixerState& state) {
  ag::NoGradGuard guard;
  return forward(ag::Var(x), x.dim(0), 1, &state).value();
}

std::unique_ptr<MixerState> LinearAttentionMixer::make_state(int64_t batch) const {
  auto s = std::make_unique<RecurrentState>();
  s->add("ssm", {batch, p_.heads, p_.key_dim, state_value_dim()});
  conv_.add_state(*s, batch);
  return s;
}

}  // namespace speedlm::nn
