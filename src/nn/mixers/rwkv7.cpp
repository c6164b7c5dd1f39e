#include "nn/mixers/rwkv7.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "autograd/functions.h"
#include "autograd/gate_functions.h"
#include "autograd/recurrent_functions.h"
#include "autograd/rwkv_functions.h"
#include "io/json_fields.h"
#include "nn/init.h"
#include "nn/mixers/recurrent_common.h"

namespace speedlm::nn {

Result<Rwkv7MixerParams> Rwkv7MixerParams::parse(const nlohmann::json& cfg, const std::string& path,
                                                 int64_t d_model) {
  Rwkv7MixerParams p;
  JsonFields f(cfg, path);
  std::string type;
  SPEEDLM_TRY(f.get_string("type", type, {"rwkv7"}, true));
  SPEEDLM_TRY(f.get_int("head_dim", p.head_dim, 1, 1024));
  SPEEDLM_TRY(f.get_int("decay_rank", p.decay_rank, 1, 4096));
  SPEEDLM_TRY(f.get_int("a_rank", p.a_rank, 1, 4096));
  SPEEDLM_TRY(f.get_int("v_rank", p.v_rank, 1, 4096));
  SPEEDLM_TRY(f.get_int("gate_rank", p.gate_rank, 1, 4096));
  SPEEDLM_TRY(f.get_int("chunk", p.chunk, 1, 128));
  if (d_model % p.head_dim != 0)
    return f.error("head_dim", fmt::format(" = {}: must divide d_model ({})", p.head_dim, d_model));
  SPEEDLM_TRY(f.finish());
  p.heads = d_model / p.head_dim;
  return p;
}

Rwkv7Mixer::Rwkv7Mixer(const Rwkv7MixerParams& p, int64_t d_model) : p_(p), d_model_(d_model) {
  const int64_t C = d_model;
  auto row = [&](float v) { return ag::Var(Tensor::full({C}, v), true); };
  auto mat = [](int64_t r, int64_t c) { return ag::Var(Tensor::zeros({r, c}), true); };
  mu_r_ = row(0.5f), mu_w_ = row(0.5f), mu_k_ = row(0.5f), mu_v_ = row(0.5f), mu_a_ = row(0.5f), mu_g_ = row(0.5f);
  w_r_ = mat(C, C), w_k_ = mat(C, C), w_v_ = mat(C, C), w_o_ = mat(C, C);
  w0_ = row(0.0f), w1_ = mat(p.decay_rank, C), w2_ = mat(C, p.decay_rank);
  a0_ = row(0.0f), a1_ = mat(p.a_rank, C), a2_ = mat(C, p.a_rank);
  v0_ = row(1.0f), v1_ = mat(p.v_rank, C), v2_ = mat(C, p.v_rank);
  g1_ = mat(p.gate_rank, C), g2_ = mat(C, p.gate_rank);
  k_k_ = row(0.85f), k_a_ = row(1.0f), r_k_ = row(0.0f), ln_w_ = row(1.0f), ln_b_ = row(0.0f);
}

void Rwkv7Mixer::collect_params(const std::string& prefix, ParamList& out) {
  const std::pair<const char*, ag::Var*> vectors[] = {
      {"x_r", &mu_r_}, {"x_w", &mu_w_}, {"x_k", &mu_k_}, {"x_v", &mu_v_}, {"x_a", &mu_a_}, {"x_g", &mu_g_},
      {"w0", &w0_},    {"a0", &a0_},    {"v0", &v0_},    {"k_k", &k_k_},  {"k_a", &k_a_},  {"r_k", &r_k_},
      {"ln_x.weight", &ln_w_}, {"ln_x.bias", &ln_b_}};
  const std::pair<const char*, ag::Var*> matrices[] = {
      {"w_r", &w_r_}, {"w_k", &w_k_}, {"w_v", &w_v_}, {"w_o", &w_o_}, {"w1", &w1_}, {"w2", &w2_},
      {"a1", &a1_},   {"a2", &a2_},   {"v1", &v1_},   {"v2", &v2_},   {"g1", &g1_}, {"g2", &g2_}};
  for (const auto& [name, var] : matrices) out.push_back({prefix + name, var, true});
  for (const auto& [name, var] : vectors) out.push_back({prefix + name, var, false});
}

void Rwkv7Mixer::init(const InitSpec& spec, uint64_t seed) {
  uint64_t stream = 0;
  for (ag::Var* m : {&w_r_, &w_k_, &w_v_, &w1_, &w2_, &a1_, &a2_, &v1_, &v2_, &g1_, &g2_})
    init_normal(m->value(), spec.std, seed, stream++);
  init_normal(w_o_.value(), spec.out_std, seed, stream++);
  // BlinkDL's decay speeds: w0 from -6.5 (slow decay) to -1.5 across the channels. The token-shift
  // mixes start at 1/2, the in-context rate at sigmoid(0), the value residual at sigmoid(1).
  const int64_t C = d_model_;
  for (int64_t c = 0; c < C; ++c)
    w0_.value().f32()[c] = static_cast<float>(-6.5 + 5.0 * std::pow(static_cast<double>(c) / std::max<int64_t>(1, C - 1), 0.85));
  for (ag::Var* m : {&mu_r_, &mu_w_, &mu_k_, &mu_v_, &mu_a_, &mu_g_}) m->value().fill(0.5f);
  a0_.value().zero();
  v0_.value().fill(1.0f);
  k_k_.value().fill(0.85f);
  k_a_.value().fill(1.0f);
  r_k_.value().zero();
  ln_w_.value().fill(1.0f);
  ln_b_.value().zero();
}

ag::Var Rwkv7Mixer::forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) {
  ForwardContext ctx;
  return forward_in_pass(x, B, T, state, ctx);
}

ag::Var Rwkv7Mixer::forward_in_pass(const ag::Var& x, int64_t B, int64_t T, MixerState* state,
                                    ForwardContext& ctx) {
  const int64_t C = d_model_, H = p_.heads, P = p_.head_dim;
  RecurrentState* rs = static_cast<RecurrentState*>(state);
  SPEEDLM_ASSERT(!rs || !ag::grad_enabled() || !x.requires_grad(), "rwkv7 with a state is inference only");
  ag::Var d = ag::token_shift(x, B, T, rs ? rs->get("shift") : Tensor());
  auto lora = [](const ag::Var& in, const ag::Var& down, const ag::Var& up) { return ag::linear(ag::linear(in, down), up); };
  ag::Var xv = ag::addcmul_row(x, d, mu_v_);
  ag::Var r = ag::linear(ag::addcmul_row(x, d, mu_r_), w_r_);
  ag::Var k = ag::linear(ag::addcmul_row(x, d, mu_k_), w_k_);
  ag::Var v = ag::linear(xv, w_v_);
  ag::Var xw = ag::addcmul_row(x, d, mu_w_);
  ag::Var w = ag::scale(ag::sigmoid(ag::add_row(ag::linear(ag::tanh(ag::linear(xw, w1_)), w2_), w0_)),
                        -static_cast<float>(std::exp(-0.5)));
  if (!ctx.v_first.defined()) ctx.v_first = v;
  v = ag::lerp(v, ctx.v_first, ag::sigmoid(ag::add_row(lora(xv, v1_, v2_), v0_)));
  ag::Var a = ag::sigmoid(ag::add_row(lora(ag::addcmul_row(x, d, mu_a_), a1_, a2_), a0_));
  ag::Var g = ag::linear(ag::sigmoid(ag::linear(ag::addcmul_row(x, d, mu_g_), g1_)), g2_);
  ag::Var kk = ag::l2norm_heads(ag::mul_row(k, k_k_), H, 1e-12f);
  k = ag::rwkv_key(k, a, k_a_);
  ag::Var neg_kk = ag::scale(kk, -1.0f), kka = ag::mul(kk, a);
  const ops::Rwkv7Dims od{B, T, H, P, P};
  const ops::Rwkv7Params op{1.0f, p_.chunk};
  ag::Var o;
  if (rs) {
    o = ag::Var(rwkv7_with_state(r.value(), w.value(), k.value(), v.value(), neg_kk.value(), kka.value(), od, op,
                                 rs->get("wkv")));
    // The shift state is the last input token of each sequence.
    for (int64_t b = 0; b < B; ++b)
      std::memcpy(rs->get("shift").f32() + b * C, x.value().f32() + ((b + 1) * T - 1) * C, sizeof(float) * C);
    rs->advance(T);
  } else {
    o = ag::rwkv7(r, w, k, v, neg_kk, kka, od, op);
  }
  o = ag::add(ag::group_norm_heads(o, H, ln_w_, ln_b_, 64e-5f), ag::rwkv_bonus(r, k, v, r_k_, H));
  return ag::linear(ag::mul(o, g), w_o_);
}

Tensor Rwkv7Mixer::step(const Tensor& x, MixerState& state) {
  ag::NoGradGuard guard;
  return forward(ag::Var(x), x.dim(0), 1, &state).value();
}

std::unique_ptr<MixerState> Rwkv7Mixer::make_state(int64_t batch) const {
  auto s = std::make_unique<RecurrentState>();
  s->add("wkv", {batch, p_.heads, p_.head_dim, p_.head_dim});
  s->add("shift", {batch, d_model_});
  return s;
}

}  // namespace speedlm::nn
