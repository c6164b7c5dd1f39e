// Causal self-attention with GQA/MQA and RoPE (Llama-style, no biases).
// Config: {"type": "attention", "heads": H, "kv_heads": KVH (default H),
//          "head_dim": Dh (default d_model / H; given without heads, H = d_model / Dh),
//          "rope_theta": 10000,
//          "window": W (default 0 = none; a query sees itself and the W - 1 keys before it),
//          "softcap": c (default 0 = none; scores s -> c tanh(s / c)),
//          "sinks": false (a learned logit per head that joins the softmax denominator),
//          "kv_cache": {"dtype": "f32" | "bf16" | "int8", "page_size": 16} (decoding storage),
//          "streaming": {"sink_tokens": S, "window": W} (StreamingLLM decoding, below)}
// Decoding (a state from make_state) keeps K and V in a PagedKvCache, RoPE applied at the
// token's absolute position. A one-token step reads the pages in place (paged_decode); a prefill
// of T > 1 tokens runs the flash op over a dequantised contiguous copy of the context. With a
// window, pages wholly outside it are freed (O(window) bytes). The f32 cache stores K/V exactly:
// decoding equals the stateless pass to f32 rounding (tests: logits RMS-rel <= 1e-5). bf16 / int8
// round each element by at most 2^-8 |x| / max|row| / 254 (paged_decode/README.md), 0.39%; the
// logits move by about as much (tests: RMS-rel <= 1e-2; measured 2.8e-3 bf16, 5.5e-3 int8).
// StreamingLLM ("pos shift", research/algorithms.md §12.1): a query attends to the first S tokens
// and the last W tokens (itself included) with positions assigned by cache slot: sinks at 0..S-1,
// the window at S..S+W-1. Keys are cached rotated at their absolute position and never re-rotated:
// RoPE scores depend only on the position difference, and within the window the slot difference
// equals the absolute difference, so the window part uses the query at its absolute position;
// the sink part uses the query rotated at its slot position S+W-1. The two parts are exact
// partial softmaxes merged by their log-sum-exp (§9.4). Training (no state) is plain causal
// attention: streaming only changes decoding past S + W tokens.
// Weights: w_qkv [(H + 2 KVH) Dh, D] (q | k | v rows), w_o [D, H Dh], sinks [H] when enabled.
#pragma once

#include "nn/mixer.h"
#include "memory/paged_kv_cache.h"
#include "ops/attention/attention/attention.h"
#include "ops/pos/rope/rope.h"

namespace speedlm::nn {

struct AttentionMixerParams {
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  double rope_theta = 10000.0;
  int64_t window = 0;
  double softcap = 0.0;
  bool sinks = false;
  ops::KvDType kv_dtype = ops::KvDType::F32;
  int64_t page_size = 16;
  int64_t sink_tokens = 0, stream_window = 0;  // stream_window > 0: StreamingLLM decoding
  ops::AttentionParams attention_params() const;
  static Result<AttentionMixerParams> parse(const nlohmann::json& cfg, const std::string& path, int64_t d_model);
};

class AttentionMixer final : public Mixer {
 public:
  AttentionMixer(const AttentionMixerParams& p, int64_t d_model);
  const char* type() const override { return "attention"; }
  void collect_params(const std::string& prefix, ParamList& out) override;
  void init(const InitSpec& spec, uint64_t seed) override;
  ag::Var forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) override;
  Tensor step(const Tensor& x, MixerState& state) override;
  std::unique_ptr<MixerState> make_state(int64_t batch) const override;
  MemoryKind memory_kind() const override {
    return p_.window > 0 || p_.stream_window > 0 ? MemoryKind::WindowKv : MemoryKind::GrowingKv;
  }

 private:
  // Attention of one query row over tokens [first, last) of sequence b: o [H, Dh], lse [H].
  void attend_range(const PagedKvCache& cache, int64_t b, int64_t first, int64_t last, const float* q, float* o,
                    float* lse) const;
  // One decode query of sequence b, whose cache holds n tokens (the query's own included).
  // q: [H, Dh] at the absolute position n - 1; q_raw: the query before RoPE (streaming only).
  void decode_one(const PagedKvCache& cache, int64_t b, int64_t n, const float* q, const float* q_raw, int64_t q_row,
                  float* o) const;
  AttentionMixerParams p_;
  int64_t d_model_;
  ag::Var w_qkv_, w_o_, sinks_;  // sinks_ [H], defined when p_.sinks
};

}  // namespace speedlm::nn
