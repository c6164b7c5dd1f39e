// RWKV's channel mix (ffn rwkv_cmix) in a tiny model of rwkv7 layers: prefill == decode, state continuation, constant
// state bytes, gradients vs finite differences, the loss falls (recurrent_model_checks.h); its token-shift state is part
// of the model's state (bytes, snapshot/restore), also next to SwiGLU layers under attention.
#include <cstring>

#include "memory/recurrent_state.h"
#include "recurrent_model_checks.h"

namespace speedlm {
namespace {

const nlohmann::json kMixer =
    nlohmann::json::parse(R"({"type": "rwkv7", "head_dim": 8, "decay_rank": 4, "a_rank": 4, "v_rank": 4, "gate_rank": 8, "chunk": 16})");
const nlohmann::json kCmix = nlohmann::json::parse(R"({"type": "rwkv_cmix", "hidden": 64})");

TEST(Rwkv7CmixModel, PrefillLogitsEqualStepByStepDecode) { testing::check_prefill_equals_decode(kMixer, kCmix); }
// Also: restoring a whole-model snapshot (FFN states included) replays identically.
TEST(Rwkv7CmixModel, ContinuingFromSavedStateEqualsOnePass) { testing::check_state_continuation(kMixer, kCmix); }
TEST(Rwkv7CmixModel, ParameterGradientsMatchFiniteDifferences) { testing::check_parameter_gradients(kMixer, kCmix); }
TEST(Rwkv7CmixModel, LossFallsByHalfOnAFixedBatchWithin100Steps) { testing::check_loss_falls(kMixer, kCmix); }

TEST(Rwkv7CmixModel, ChannelMixGradientsMatchFiniteDifferences) {
  LanguageModel model = testing::tiny_model(kMixer, 19, kCmix);
  auto names = testing::expect_gradients_match_finite_differences(model, 19, 12, ".ffn.");
  const std::vector<std::string> expected = {"layers.0.ffn.w_k", "layers.0.ffn.w_v", "layers.0.ffn.x_k",
                                             "layers.1.ffn.w_k", "layers.1.ffn.w_v", "layers.1.ffn.x_k"};
  EXPECT_EQ(names, expected);
}

RecurrentState& ffn_state(ModelState& s, size_t layer) { return static_cast<RecurrentState&>(*s.ffn.at(layer)); }

// The FFN state is the last normed input row of each sequence: [B, D] f32 per layer, counted in
// bytes(); a SwiGLU model has none.
TEST(Rwkv7CmixModel, StateHoldsTheLastTokenPerLayerAndCountsItsBytes) {
  const int64_t B = 3, D = 32;
  LanguageModel cmix = testing::tiny_model(kMixer, 5, kCmix), swiglu = testing::tiny_model(kMixer, 5);
  ModelState s = cmix.make_state(B), plain = swiglu.make_state(B);
  ASSERT_EQ(s.ffn.size(), 2u);
  ASSERT_EQ(plain.ffn.size(), 2u);
  size_t mixer_bytes = 0;
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(s.ffn[i]);
    EXPECT_FALSE(plain.ffn[i]);
    EXPECT_EQ(s.ffn[i]->bytes(), static_cast<size_t>(B * D * 4));
    mixer_bytes += s.layers[i]->bytes();
  }
  EXPECT_EQ(s.bytes(), mixer_bytes + 2 * B * D * 4);
  EXPECT_EQ(plain.bytes(), mixer_bytes);
  ag::NoGradGuard guard;
  cmix.forward_last(testing::random_ids(B, 9, 97, 2), s);
  for (size_t i = 0; i < 2; ++i) {
    const Tensor& shift = ffn_state(s, i).get("shift");
    double norm = 0;
    for (int64_t k = 0; k < shift.numel(); ++k) norm += shift.f32()[k] * shift.f32()[k];
    EXPECT_GT(norm, 0.0) << "layer " << i;
  }
  EXPECT_EQ(s.bytes(), mixer_bytes + 2 * B * D * 4);
}

// Restore brings back the FFN state too, and that state matters: zeroing it changes the logits.
TEST(Rwkv7CmixModel, SnapshotRestoreCoversTheFfnState) {
  LanguageModel model = testing::tiny_model(kMixer, 23, kCmix);
  Tensor ids = testing::random_ids(1, 30, 97, 4);
  ag::NoGradGuard guard;
  ModelState state = model.make_state(1);
  model.forward_last(testing::ids_range(ids, 0, 0, 20), state);
  ModelState snap = state.snapshot();
  const Tensor next = testing::ids_range(ids, 0, 20, 21);
  Tensor expected = model.forward_last(next, state);
  model.forward_last(testing::ids_range(ids, 0, 21, 30), state);
  state.restore(snap);
  for (size_t i = 0; i < 2; ++i) {
    const Tensor &a = ffn_state(state, i).get("shift"), &b = ffn_state(snap, i).get("shift");
    EXPECT_EQ(std::memcmp(a.f32(), b.f32(), a.nbytes()), 0) << "layer " << i;
  }
  ModelState zeroed = state.snapshot();
  ffn_state(zeroed, 1).get("shift").zero();
  Tensor again = model.forward_last(next, state), without = model.forward_last(next, zeroed);
  for (int64_t v = 0; v < 97; ++v) ASSERT_EQ(again.f32()[v], expected.f32()[v]);
  EXPECT_GT(testing::rms_rel(without.f32(), expected.f32(), 97), 1e-4);
}

// Per-layer FFNs under attention: SwiGLU in layer 0 (no FFN state), the channel mix in layer 1.
// Prefill == step-by-step decode, and a snapshot restores the mixed state.
TEST(Rwkv7CmixModel, MixedFfnLayersUnderAttentionDecodeLikePrefill) {
  nlohmann::json j = nlohmann::json::parse(R"({
    "vocab_size": 97, "d_model": 32, "n_layers": 2, "tie_embeddings": true, "init_std": 0.1,
    "layers": ["attn"], "mixers": {"attn": {"type": "attention", "heads": 4, "kv_heads": 2, "head_dim": 8}},
    "ffns": {"d": {"type": "swiglu", "hidden": 48}, "c": {"type": "rwkv_cmix", "hidden": 64}}, "ffn_layers": ["d", "c"]
  })");
  LanguageModel model(ModelConfig::from_json(j).value());
  model.init(29);
  const int64_t B = 2, T = 12, V = 97;
  Tensor ids = testing::random_ids(B, T, V, 6);
  ag::NoGradGuard guard;
  Tensor full = model.forward(ids).value();  // [B*T, V]
  ModelState state = model.make_state(B);
  ASSERT_FALSE(state.ffn[0]);
  ASSERT_TRUE(state.ffn[1]);
  ModelState snap;
  Tensor at_snap;
  for (int64_t t = 0; t < T; ++t) {
    if (t == T / 2) snap = state.snapshot();
    Tensor step_ids = Tensor::empty({B, 1}, DType::I32);
    for (int64_t b = 0; b < B; ++b) step_ids.i32()[b] = ids.i32()[b * T + t];
    Tensor logits = model.forward_last(step_ids, state);  // [B, V]
    if (t == T / 2) at_snap = logits;
    for (int64_t b = 0; b < B; ++b)
      EXPECT_LE(testing::rms_rel(logits.f32() + b * V, full.f32() + (b * T + t) * V, V), 1e-5) << "b=" << b << " t=" << t;
  }
  state.restore(snap);
  Tensor step_ids = Tensor::empty({B, 1}, DType::I32);
  for (int64_t b = 0; b < B; ++b) step_ids.i32()[b] = ids.i32()[b * T + T / 2];
  Tensor again = model.forward_last(step_ids, state);
  for (int64_t i = 0; i < B * V; ++i) ASSERT_EQ(again.f32()[i], at_snap.f32()[i]);
}

}  // namespace
}  // namespace speedlm
