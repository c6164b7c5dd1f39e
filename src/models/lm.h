// The language model assembled from a ModelConfig: token embedding, n_layers pre-norm
// blocks (x += mixer(rmsnorm(x)); x += ffn(rmsnorm(x)), ffn a SwiGLU, a MoE or RWKV's channel mix),
// final norm, LM head (tied to the embedding by default).
#pragma once

#include <memory>
#include <vector>

#include "memory/mixer_state.h"
#include "models/config.h"
#include "nn/mixer.h"
#include "nn/moe.h"
#include "nn/rwkv_cmix.h"

namespace speedlm {

// Decoding memory of the whole model: one state per layer, routed by mixer kind, and per layer
// the FFN's state: null for the stateless FFNs (SwiGLU, MoE), the last token for rwkv_cmix.
// bytes(), snapshot() and restore() cover both.
struct ModelState {
  std::vector<std::unique_ptr<MixerState>> layers;
  std::vector<std::unique_ptr<MixerState>> ffn;  // same length as layers
  int64_t length() const { return layers.empty() ? 0 : layers[0]->length(); }
  size_t bytes() const;
  ModelState snapshot() const;
  void restore(const ModelState& snap);
};

class LanguageModel {
 public:
  explicit LanguageModel(ModelConfig cfg);
  const ModelConfig& config() const { return cfg_; }
  void init(uint64_t seed);
  // Parameters in a stable order (the order of checkpoints and optimizer state).
  const nn::ParamList& params() const { return params_; }
  int64_t num_params() const;
  // Parameters one token uses (MoE layers count k of their E routed experts).
  int64_t active_params() const;

  // ids: [B, T] i32 -> logits [B*T, V]. With a state the tokens continue it (inference).
  ag::Var forward(const Tensor& ids, ModelState* state = nullptr);
  // Mean next-token cross-entropy of forward(ids) against targets (same shape as ids; entries
  // equal to the ignore index do not count), fused with the LM head.
  ag::Var loss(const Tensor& ids, const Tensor& targets);
  // Logits of only the last position of each sequence: [B, V] (prefill/decode).
  Tensor forward_last(const Tensor& ids, ModelState& state);
  ModelState make_state(int64_t batch) const;

  // MoE layers. The sum of the balancing losses of the training forwards since the last call
  // (undefined without any); add it to the training loss.
  ag::Var take_aux_loss();
  // Each MoE layer's (index, load) since the last call.
  std::vector<std::pair<int64_t, nn::MoeLoad>> take_moe_load();
  // The auxiliary-loss-free bias update; call after each optimizer step.
  void update_router_bias();

 private:
  struct Block {
    ag::Var norm1, norm2;
    std::unique_ptr<nn::Mixer> mixer;
    ag::Var w_gate_up, w_down;  // [2F, D], [D, F] (dense FFN)
    std::unique_ptr<nn::MoE> moe;
    std::unique_ptr<nn::RwkvChannelMix> cmix;
  };
  ag::Var hidden(const Tensor& ids, ModelState* state);
  ModelConfig cfg_;
  ag::Var tok_emb_, norm_f_, lm_head_;
  std::vector<Block> blocks_;
  nn::ParamList params_;
};

}  // namespace speedlm
