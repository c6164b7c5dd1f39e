#include "nn/mixers/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/functions.h"
#include "io/json_fields.h"
#include "nn/init.h"

namespace speedlm::nn {

Result<AttentionMixerParams> AttentionMixerParams::parse(const nlohmann::json& cfg, const std::string& path,
                                                         int64_t d_model) {
  AttentionMixerParams p;
  JsonFields f(cfg, path);
  std::string type;
  SPEEDLM_TRY(f.get_string("type", type, {"attention"}, true));
  // heads and head_dim: either, or both; given one, the other makes heads x head_dim = d_model.
  SPEEDLM_TRY(f.get_int("heads", p.heads, 1, 4096));
  SPEEDLM_TRY(f.get_int("head_dim", p.head_dim, 2, 1024));
  if (p.heads == 0 && p.head_dim == 0) return f.error("heads", ": required key is missing (or give head_dim)");
  if (p.heads == 0) {
    if (d_model % p.head_dim != 0)
      return f.error("head_dim", fmt::format(" = {}: must divide d_model ({})", p.head_dim, d_model));
    p.heads = d_model / p.head_dim;
  }
  if (p.head_dim == 0) {
    if (d_model % p.heads != 0)
      return f.error("head_dim", fmt::format(": required when heads ({}) does not divide d_model ({})", p.heads, d_model));
    p.head_dim = d_model / p.heads;
  }
  p.kv_heads = p.heads;
  SPEEDLM_TRY(f.get_int("kv_heads", p.kv_heads, 1, 4096));
  if (p.heads % p.kv_heads != 0)
    return f.error("kv_heads", fmt::format(" = {}: heads ({}) must be a multiple of it", p.kv_heads, p.heads));
  if (p.head_dim % 2 != 0) return f.error("head_dim", fmt::format(" = {}: must be even (RoPE pairs)", p.head_dim));
  SPEEDLM_TRY(f.get_float("rope_theta", p.rope_theta, 1.0, 1e9));
  SPEEDLM_TRY(f.get_int("window", p.window, 0, int64_t{1} << 30));
  SPEEDLM_TRY(f.get_float("softcap", p.softcap, 0.0, 1e6));
  SPEEDLM_TRY(f.get_bool("sinks", p.sinks));
  nlohmann::json kv, stream;
  SPEEDLM_TRY(f.get_object("kv_cache", kv));
  SPEEDLM_TRY(f.get_object("streaming", stream));
  SPEEDLM_TRY(f.finish());
  if (!kv.is_null()) {
    JsonFields k(kv, path + ".kv_cache");
    std::string dtype = "f32";
    SPEEDLM_TRY(k.get_string("dtype", dtype, {"f32", "bf16", "int8"}));
    p.kv_dtype = ops::parse_kv_dtype(dtype).value();
    SPEEDLM_TRY(k.get_int("page_size", p.page_size, 1, 4096));
    SPEEDLM_TRY(k.finish());
  }
  if (!stream.is_null()) {
    JsonFields st(stream, path + ".streaming");
    SPEEDLM_TRY(st.get_int("sink_tokens", p.sink_tokens, 0, int64_t{1} << 30, true));
    SPEEDLM_TRY(st.get_int("window", p.stream_window, 1, int64_t{1} << 30, true));
    SPEEDLM_TRY(st.finish());
    if (p.window > 0)
      return f.error("streaming", fmt::format(": with window = {}: a streaming cache has its own window", p.window));
  }
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

namespace {

// Merges a partial softmax (o2, lse2) into (o, lse), per head: both are exact over disjoint
// key sets, so o = (e^lse o + e^lse2 o2) / (e^lse + e^lse2) (research/algorithms.md §9.4).
void merge_into(int64_t H, int64_t Dh, float* o, float* lse, const float* o2, const float* lse2) {
  for (int64_t h = 0; h < H; ++h) {
    const float m = std::max(lse[h], lse2[h]);
    const float a = std::exp(lse[h] - m), c = std::exp(lse2[h] - m);
    for (int64_t i = 0; i < Dh; ++i) o[h * Dh + i] = (a * o[h * Dh + i] + c * o2[h * Dh + i]) / (a + c);
    lse[h] = m + std::log(a + c);
  }
}

}  // namespace

void AttentionMixer::attend_range(const PagedKvCache& cache, int64_t b, int64_t first, int64_t last, const float* q,
                                  float* o, float* lse) const {
  const int64_t H = p_.heads, KVH = p_.kv_heads, Dh = p_.head_dim, P = p_.page_size;
  ops::AttentionParams ap = p_.attention_params();
  ap.window = 0;  // [first, last) is already the window
  // Only the head of a range that starts mid-page is copied (< P tokens); whole pages are read in place.
  const int64_t body = std::min(last, (first + P - 1) / P * P);
  std::vector<float> o2(H * Dh), lse2(H);
  bool have = false;
  if (body > first) {
    std::vector<float> k((body - first) * KVH * Dh), v(k.size());
    cache.read(b, first, body, k.data(), v.data());
    ops::attention_plain_fwd(ap, {1, 1, body - first, H, KVH, Dh}, q, k.data(), v.data(), o, lse);
    have = true;
  }
  if (last > body) {
    const int32_t* table = cache.table_at(b, body / P);
    const int64_t len = last - body;
    ops::PagedKv kv{cache.layout(), cache.pool().pages(), &table, &len};
    ops::PagedDecodeParams pp;
    pp.scale = ap.scale, pp.softcap = ap.softcap;
    ops::paged_decode_fwd(pp, {1, H, KVH, Dh}, kv, q, have ? o2.data() : o, have ? lse2.data() : lse);
    if (have) merge_into(H, Dh, o, lse, o2.data(), lse2.data());
  }
}

void AttentionMixer::decode_one(const PagedKvCache& cache, int64_t b, int64_t n, const float* q, const float* q_raw,
                                int64_t q_row, float* o) const {
  const int64_t H = p_.heads, Dh = p_.head_dim, S = p_.sink_tokens, W = p_.stream_window;
  std::vector<float> lse(H);
  if (W > 0 && n > S + W) {
    // StreamingLLM after eviction: the window part at absolute positions, the sinks with the query
    // at its slot position S + W - 1 (see attention.h).
    attend_range(cache, b, n - W, n, q, o, lse.data());
    if (S > 0) {
      std::vector<float> q_slot(H * Dh), o2(H * Dh), lse2(H);
      const int32_t slot = static_cast<int32_t>(S + W - 1);
      ops::rope_fast_fwd_rows({static_cast<float>(p_.rope_theta)}, q_raw, q_row, &slot, 1, 1, H, Dh, q_slot.data(),
                              H * Dh);
      attend_range(cache, b, 0, S, q_slot.data(), o2.data(), lse2.data());
      merge_into(H, Dh, o, lse.data(), o2.data(), lse2.data());
    }
  } else {
    attend_range(cache, b, p_.window > 0 ? std::max<int64_t>(0, n - p_.window) : 0, n, q, o, lse.data());
  }
  if (p_.sinks) {
    // The learned sink logit joins the denominator: o *= e^lse / (e^lse + e^sink).
    const float* sink = sinks_.value().f32();
    for (int64_t h = 0; h < H; ++h) {
      const float m = std::max(lse[h], sink[h]);
      const float w = std::exp(lse[h] - m) / (std::exp(lse[h] - m) + std::exp(sink[h] - m));
      for (int64_t i = 0; i < Dh; ++i) o[h * Dh + i] *= w;
    }
  }
}

ag::Var AttentionMixer::forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) {
  auto* cache = static_cast<PagedKvCache*>(state);
  int64_t past = cache ? cache->length() : 0;
  Tensor pos = Tensor::empty({B, T}, DType::I32);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) pos.i32()[b * T + t] = static_cast<int32_t>(past + t);
  ops::AttentionDims d{B, T, T, p_.heads, p_.kv_heads, p_.head_dim};
  ops::RopeParams rope{static_cast<float>(p_.rope_theta)};
  const ag::Var proj = ag::linear(x, w_qkv_);  // [B*T, (H + 2 KVH) Dh]
  ag::Qkv qkv = ag::split_qkv_rope(proj, pos, d, rope);
  const ops::AttentionParams ap = p_.attention_params();
  if (!cache) return ag::linear(ag::attention(qkv.q, qkv.k, qkv.v, d, ap, sinks_), w_o_);

  SPEEDLM_ASSERT(!ag::grad_enabled() || !x.requires_grad(), "attention with a KV cache is inference only");
  const int64_t H = p_.heads, KVH = p_.kv_heads, Dh = p_.head_dim, HD = H * Dh, KD = KVH * Dh;
  const float *q = qkv.q.value().f32(), *k = qkv.k.value().f32(), *v = qkv.v.value().f32();
  Tensor o = Tensor::empty({B * T, HD});
  for (int64_t b = 0; b < B; ++b) {
    if (T == 1 || p_.stream_window > 0) {
      // Token by token: a streaming cache evicts between tokens, so a chunk's queries see
      // different key sets with different positions.
      for (int64_t t = 0, r = b * T; t < T; ++t, ++r) {
        cache->append(b, k + r * KD, v + r * KD, 1);
        decode_one(*cache, b, past + t + 1, q + r * HD, proj.value().f32() + r * proj.value().dim(1),
                   proj.value().dim(1), o.f32() + r * HD);
        cache->trim(b);
      }
      continue;
    }
    cache->append(b, k + b * T * KD, v + b * T * KD, T);
    // The T new queries see the window before the first of them (or everything): one call over a
    // dequantised copy, the window and causal mask bottom-right aligned.
    const int64_t n = past + T, first = p_.window > 0 ? std::max<int64_t>(0, past - p_.window + 1) : 0;
    Tensor kc = Tensor::empty({n - first, KD}), vc = Tensor::empty({n - first, KD}), lse = Tensor::empty({1, H, T});
    cache->read(b, first, n, kc.f32(), vc.f32());
    ops::attention_flash_fwd(ap, {1, T, n - first, H, KVH, Dh}, q + b * T * HD, kc.f32(), vc.f32(),
                             o.f32() + b * T * HD, lse.f32(), p_.sinks ? sinks_.value().f32() : nullptr);
    cache->trim(b);
  }
  return ag::linear(ag::Var(o), w_o_);
}

Tensor AttentionMixer::step(const Tensor& x, MixerState& state) {
  ag::NoGradGuard guard;
  return forward(ag::Var(x), x.dim(0), 1, &state).value();
}

std::unique_ptr<MixerState> AttentionMixer::make_state(int64_t batch) const {
  PagedKvOptions opt{p_.kv_heads, p_.head_dim, p_.page_size, p_.kv_dtype};
  // A window W query sees W tokens, itself included; streaming keeps S sinks and the last W.
  opt.keep_first = p_.sink_tokens;
  opt.keep_last = p_.stream_window > 0 ? p_.stream_window : p_.window;
  return std::make_unique<PagedKvCache>(opt, batch);
}

}  // namespace speedlm::nn
