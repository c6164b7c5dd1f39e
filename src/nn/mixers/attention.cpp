#include "nn/mixers/attention.h"

#include "autograd/functions.h"
#include "io/json_fields.h"
#include "memory/kv_cache.h"
#include "nn/init.h"

namespace speedlm::nn {

Result<AttentionMixerParams> AttentionMixerParams::parse(const nlohmann::json& cfg, const std::string& path,
                                                         int64_t d_model) {
  AttentionMixerParams p;
  JsonFields f(cfg, path);
  std::string type;
  SPEEDLM_TRY(f.get_string("type", type, {"attention"}, true));
  SPEEDLM_TRY(f.get_int("heads", p.heads, 1, 4096, true));
  p.kv_heads = p.heads;
  SPEEDLM_TRY(f.get_int("kv_heads", p.kv_heads, 1, 4096));
  if (p.heads % p.kv_heads != 0)
    return f.error("kv_heads", fmt::format(" = {}: heads ({}) must be a multiple of it", p.kv_heads, p.heads));
  p.head_dim = d_model % p.heads == 0 ? d_model / p.heads : 0;
  SPEEDLM_TRY(f.get_int("head_dim", p.head_dim, 2, 1024, p.head_dim == 0));
  if (p.head_dim % 2 != 0) return f.error("head_dim", fmt::format(" = {}: must be even (RoPE pairs)", p.head_dim));
  SPEEDLM_TRY(f.get_float("rope_theta", p.rope_theta, 1.0, 1e9));
  SPEEDLM_TRY(f.get_int("window", p.window, 0, int64_t{1} << 30));
  SPEEDLM_TRY(f.get_float("softcap", p.softcap, 0.0, 1e6));
  SPEEDLM_TRY(f.get_bool("sinks", p.sinks));
  SPEEDLM_TRY(f.finish());
  return p;
}

ops::AttentionParams AttentionMixerParams::attention_params() const {
  ops::AttentionParams ap;
  ap.window = window;
  ap.softcap = static_cast<float>(softcap);
  return ap;
}

AttentionMixer::AttentionMixer(const AttentionMixerParams& p, int64_t d_model) : p_(p), d_model_(d_model) {
  w_qkv_ = ag::Var(Tensor::zeros({(p.heads + 2 * p.kv_heads) * p.head_dim, d_model}), true);
  w_o_ = ag::Var(Tensor::zeros({d_model, p.heads * p.head_dim}), true);
  if (p.sinks) sinks_ = ag::Var(Tensor::zeros({p.heads}), true);
}

void AttentionMixer::collect_params(const std::string& prefix, ParamList& out) {
  out.push_back({prefix + "w_qkv", &w_qkv_, true});
  out.push_back({prefix + "w_o", &w_o_, true});
  if (p_.sinks) out.push_back({prefix + "sinks", &sinks_, false});
}

void AttentionMixer::init(const InitSpec& spec, uint64_t seed) {
  init_normal(w_qkv_.value(), spec.std, seed, 0);
  init_normal(w_o_.value(), spec.out_std, seed, 1);
}

ag::Var AttentionMixer::forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) {
  auto* cache = static_cast<KvCache*>(state);
  int64_t past = cache ? cache->length() : 0;
  Tensor pos = Tensor::empty({B, T}, DType::I32);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) pos.i32()[b * T + t] = static_cast<int32_t>(past + t);
  ops::AttentionDims d{B, T, T, p_.heads, p_.kv_heads, p_.head_dim};
  ops::RopeParams rope{static_cast<float>(p_.rope_theta)};
  ag::Qkv qkv = ag::split_qkv_rope(ag::linear(x, w_qkv_), pos, d, rope);
  const ops::AttentionParams ap = p_.attention_params();
  if (!cache) return ag::linear(ag::attention(qkv.q, qkv.k, qkv.v, d, ap, sinks_), w_o_);

  SPEEDLM_ASSERT(!ag::grad_enabled() || !x.requires_grad(), "attention with a KV cache is inference only");
  cache->append(qkv.k.value().f32(), qkv.v.value().f32(), T);
  int64_t Tk = cache->length(), HD = p_.heads * p_.head_dim;
  Tensor o = Tensor::empty({B * T, HD}), lse = Tensor::empty({1, p_.heads, T});
  ops::AttentionDims one{1, T, Tk, p_.heads, p_.kv_heads, p_.head_dim};
  // The cache rows of one sequence are contiguous, so each sequence is one call. The window and
  // the causal mask are bottom-right aligned, so the new queries see the cached keys correctly.
  // Prefill runs the flash form; a one-token decode step the plain one, because flash repacks
  // K and V of the whole cache per call, as much memory traffic as the step itself.
  const float* sinks = p_.sinks ? sinks_.value().f32() : nullptr;
  const auto fwd = T == 1 ? ops::attention_plain_fwd : ops::attention_flash_fwd;
  for (int64_t b = 0; b < B; ++b)
    fwd(ap, one, qkv.q.value().f32() + b * T * HD, cache->k_row(b), cache->v_row(b), o.f32() + b * T * HD, lse.f32(),
        sinks);
  return ag::linear(ag::Var(o), w_o_);
}

Tensor AttentionMixer::step(const Tensor& x, MixerState& state) {
  ag::NoGradGuard guard;
  return forward(ag::Var(x), x.dim(0), 1, &state).value();
}

std::unique_ptr<MixerState> AttentionMixer::make_state(int64_t batch) const {
  return std::make_unique<KvCache>(batch, p_.kv_heads, p_.head_dim);
}

}  // namespace speedlm::nn
