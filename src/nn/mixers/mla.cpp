#include "nn/mixers/mla.h"

#include <cmath>
#include <cstring>

#include "autograd/functions.h"
#include "io/json_fields.h"
#include "memory/latent_kv_cache.h"
#include "nn/init.h"
#include "ops/pos/rope/rope.h"

namespace speedlm::nn {

namespace {

// The latent norms' epsilon (DeepSeek's q_a_layernorm / kv_a_layernorm use 1e-6).
constexpr float kNormEps = 1e-6f;

Tensor positions(int64_t B, int64_t T, int64_t past) {
  Tensor pos = Tensor::empty({B, T}, DType::I32);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) pos.i32()[b * T + t] = static_cast<int32_t>(past + t);
  return pos;
}

}  // namespace

Result<MlaMixerParams> MlaMixerParams::parse(const nlohmann::json& cfg, const std::string& path, int64_t) {
  MlaMixerParams p;
  JsonFields f(cfg, path);
  std::string type;
  SPEEDLM_TRY(f.get_string("type", type, {"mla"}, true));
  SPEEDLM_TRY(f.get_int("heads", p.heads, 1, 4096, true));
  SPEEDLM_TRY(f.get_int("q_lora_rank", p.q_lora_rank, 0, 65536));
  SPEEDLM_TRY(f.get_int("kv_lora_rank", p.kv_lora_rank, 1, 65536, true));
  SPEEDLM_TRY(f.get_int("qk_nope_head_dim", p.qk_nope_head_dim, 1, 1024, true));
  SPEEDLM_TRY(f.get_int("qk_rope_head_dim", p.qk_rope_head_dim, 2, 1024, true));
  SPEEDLM_TRY(f.get_int("v_head_dim", p.v_head_dim, 1, 1024, true));
  SPEEDLM_TRY(f.get_float("rope_theta", p.rope_theta, 1.0, 1e9));
  SPEEDLM_TRY(f.finish());
  if (p.qk_rope_head_dim % 2 != 0)
    return f.error("qk_rope_head_dim", fmt::format(" = {}: must be even (RoPE pairs)", p.qk_rope_head_dim));
  const int64_t dq = p.qk_nope_head_dim + p.qk_rope_head_dim;
  if (p.v_head_dim > dq)
    return f.error("v_head_dim", fmt::format(" = {}: must be <= qk_nope_head_dim + qk_rope_head_dim ({}); values are "
                                             "zero-padded to the q.k head dim",
                                             p.v_head_dim, dq));
  return p;
}

MlaMixer::MlaMixer(const MlaMixerParams& p, int64_t d_model) : p_(p), d_model_(d_model) {
  const int64_t H = p.heads, Dq = p.qk_nope_head_dim + p.qk_rope_head_dim, C = p.kv_lora_rank;
  if (p.q_lora_rank > 0) {
    w_dq_ = ag::Var(Tensor::zeros({p.q_lora_rank, d_model}), true);
    q_norm_ = ag::Var(Tensor::full({p.q_lora_rank}, 1.0f), true);
    w_uq_ = ag::Var(Tensor::zeros({H * Dq, p.q_lora_rank}), true);
  } else {
    w_q_ = ag::Var(Tensor::zeros({H * Dq, d_model}), true);
  }
  w_dkv_ = ag::Var(Tensor::zeros({C + p.qk_rope_head_dim, d_model}), true);
  kv_norm_ = ag::Var(Tensor::full({C}, 1.0f), true);
  w_ukv_ = ag::Var(Tensor::zeros({H * (p.qk_nope_head_dim + p.v_head_dim), C}), true);
  w_o_ = ag::Var(Tensor::zeros({d_model, H * p.v_head_dim}), true);
}

void MlaMixer::collect_params(const std::string& prefix, ParamList& out) {
  if (p_.q_lora_rank > 0) {
    out.push_back({prefix + "w_dq", &w_dq_, true});
    out.push_back({prefix + "q_norm", &q_norm_, false});
    out.push_back({prefix + "w_uq", &w_uq_, true});
  } else {
    out.push_back({prefix + "w_q", &w_q_, true});
  }
  out.push_back({prefix + "w_dkv", &w_dkv_, true});
  out.push_back({prefix + "kv_norm", &kv_norm_, false});
  out.push_back({prefix + "w_ukv", &w_ukv_, true});
  out.push_back({prefix + "w_o", &w_o_, true});
}

void MlaMixer::init(const InitSpec& spec, uint64_t seed) {
  if (p_.q_lora_rank > 0) {
    init_normal(w_dq_.value(), spec.std, seed, 0);
    q_norm_.value().fill(1.0f);
    init_normal(w_uq_.value(), spec.std, seed, 1);
  } else {
    init_normal(w_q_.value(), spec.std, seed, 0);
  }
  init_normal(w_dkv_.value(), spec.std, seed, 2);
  kv_norm_.value().fill(1.0f);
  init_normal(w_ukv_.value(), spec.std, seed, 3);
  init_normal(w_o_.value(), spec.out_std, seed, 4);
}

MlaDims MlaMixer::dims(int64_t B, int64_t T) const {
  return {B, T, p_.heads, p_.kv_lora_rank, p_.qk_nope_head_dim, p_.qk_rope_head_dim, p_.v_head_dim};
}

float MlaMixer::scale() const {
  return 1.0f / std::sqrt(static_cast<float>(p_.qk_nope_head_dim + p_.qk_rope_head_dim));
}

ag::Var MlaMixer::query(const ag::Var& x) const {
  if (p_.q_lora_rank == 0) return ag::linear(x, w_q_);
  return ag::linear(ag::rmsnorm(ag::linear(x, w_dq_), q_norm_, kNormEps), w_uq_);
}

ag::Var MlaMixer::forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) {
  auto* cache = static_cast<LatentKvCache*>(state);
  const MlaDims d = dims(B, T);
  const Tensor pos = positions(B, T, cache ? cache->length() : 0);
  const ops::RopeParams rope{static_cast<float>(p_.rope_theta)};
  ag::Var q = query(x);
  Latent lat = mla_split_latent(ag::linear(x, w_dkv_), pos, d, rope);
  ag::Var c = ag::rmsnorm(lat.c_raw, kv_norm_, kNormEps);
  if (!cache) {
    // Expanded heads: ordinary multi-head attention with q.k head dim Dq (v zero-padded to Dq).
    MlaHeads heads = mla_expand(q, ag::linear(c, w_ukv_), lat.k_pe, pos, d, rope);
    ops::AttentionParams ap;
    ap.scale = scale();
    ag::Var o = ag::attention(heads.q, heads.k, heads.v, ops::AttentionDims{B, T, T, d.H, d.H, d.Dq()}, ap);
    return ag::linear(mla_take_v(o, d), w_o_);
  }

  SPEEDLM_ASSERT(!ag::grad_enabled() || !x.requires_grad(), "MLA with a latent cache is inference only");
  // Cache [c_kv | k_pe] per token, then absorbed attention per sequence over its cached rows.
  const int64_t N = d.N(), W = d.C + d.Dr, Dq = d.Dq();
  Tensor rows = Tensor::empty({N, W});
  for (int64_t n = 0; n < N; ++n) {
    std::memcpy(rows.f32() + n * W, c.value().f32() + n * d.C, sizeof(float) * d.C);
    std::memcpy(rows.f32() + n * W + d.C, lat.k_pe.value().f32() + n * d.Dr, sizeof(float) * d.Dr);
  }
  cache->append(rows.f32(), T);
  Tensor qv = q.value().clone();
  mla_rope_q(d, pos, rope, qv.f32(), false);
  Tensor o = Tensor::empty({N, d.H * d.Dv});
  const MlaDims one = dims(1, T);
  for (int64_t b = 0; b < B; ++b)
    mla_absorbed_attention(one, cache->length(), scale(), qv.f32() + b * T * d.H * Dq, cache->rows(b),
                           w_ukv_.value().f32(), o.f32() + b * T * d.H * d.Dv);
  return ag::linear(ag::Var(o), w_o_);
}

Tensor MlaMixer::step(const Tensor& x, MixerState& state) {
  ag::NoGradGuard guard;
  return forward(ag::Var(x), x.dim(0), 1, &state).value();
}

std::unique_ptr<MixerState> MlaMixer::make_state(int64_t batch) const {
  return std::make_unique<LatentKvCache>(batch, p_.kv_lora_rank, p_.qk_rope_head_dim);
}

}  // namespace speedlm::nn
