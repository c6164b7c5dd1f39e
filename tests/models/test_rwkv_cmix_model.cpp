// RWKV's channel mix (ffn rwkv_cmix) in a tiny model of rwkv7 layers: prefill == decode, state continuation, constant
// state bytes, gradients vs finite differences, the loss falls (recurrent_model_checks.h); its token-shift state is part
// of the model's state (bytes, snapshot/restore).
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

}  // namespace
}  // namespace speedlm
