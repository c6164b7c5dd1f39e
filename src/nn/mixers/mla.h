// Multi-head latent attention (DeepSeek-V2/V3; research/algorithms.md §10).
// Config: {"type": "mla", "heads": H, "q_lora_rank": Rq (0: plain w_q), "kv_lora_rank": C,
//          "qk_nope_head_dim": Dn, "qk_rope_head_dim": Dr, "v_head_dim": Dv, "rope_theta": 10000}
// Weights: [w_dq [Rq, D], q_norm [Rq], w_uq [H Dq, Rq]] or w_q [H Dq, D]; w_dkv [C + Dr, D],
//          kv_norm [C], w_ukv [H (Dn + Dv), C] (per head: W_UK^h rows then W_UV^h rows), w_o [D, H Dv].
// Query: q = W_UQ RMSNorm(W_DQ x) per head [q_nope (Dn) | q_pe (Dr)], RoPE on q_pe. KV: W_DKV x =
// [c_kv (C) | k_pe (Dr)], c_kv = RMSNorm(c_kv), RoPE on k_pe (one key shared by all heads),
// k_nope^h = W_UK^h c_kv, v^h = W_UV^h c_kv. Scores scale (q_nope.k_nope + q_pe.k_pe), scale = Dq^-1/2.
// Two execution modes with the same math: forward() without a state expands the heads (training),
// with a LatentKvCache (prefill, step) it caches only [c_kv | k_pe] per token and absorbs W_UK into
// the query and W_UV into the output (mla_parts.h).
#pragma once

#include "nn/mixer.h"
#include "nn/mixers/mla_parts.h"

namespace speedlm::nn {

struct MlaMixerParams {
  int64_t heads = 0;
  int64_t q_lora_rank = 0;
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t v_head_dim = 0;
  double rope_theta = 10000.0;
  static Result<MlaMixerParams> parse(const nlohmann::json& cfg, const std::string& path, int64_t d_model);
};

class MlaMixer final : public Mixer {
 public:
  MlaMixer(const MlaMixerParams& p, int64_t d_model);
  const char* type() const override { return "mla"; }
  void collect_params(const std::string& prefix, ParamList& out) override;
  void init(const InitSpec& spec, uint64_t seed) override;
  ag::Var forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) override;
  Tensor step(const Tensor& x, MixerState& state) override;
  std::unique_ptr<MixerState> make_state(int64_t batch) const override;
  MemoryKind memory_kind() const override { return MemoryKind::LatentKv; }

 private:
  MlaDims dims(int64_t B, int64_t T) const;
  ag::Var query(const ag::Var& x) const;  // [N, D] -> [N, H Dq]
  float scale() const;
  MlaMixerParams p_;
  int64_t d_model_;
  ag::Var w_dq_, q_norm_, w_uq_, w_q_, w_dkv_, kv_norm_, w_ukv_, w_o_;
};

}  // namespace speedlm::nn
