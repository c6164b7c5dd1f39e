// A tiny model of linear_attention layers: prefill == decode, state continuation, constant state bytes,
// gradients vs finite differences, the loss falls (recurrent_model_checks.h); the same with the
// optional short conv ("conv": 4), which adds only its parameters and window.
#include "recurrent_model_checks.h"

namespace speedlm {
namespace {

const nlohmann::json kMixer = nlohmann::json::parse(R"({"type": "linear_attention", "heads": 4, "key_dim": 8, "chunk": 16})");

TEST(LinearAttentionModel, PrefillLogitsEqualStepByStepDecode) { testing::check_prefill_equals_decode(kMixer); }
TEST(LinearAttentionModel, ContinuingFromSavedStateEqualsOnePass) { testing::check_state_continuation(kMixer); }
TEST(LinearAttentionModel, ParameterGradientsMatchFiniteDifferences) { testing::check_parameter_gradients(kMixer); }
TEST(LinearAttentionModel, LossFallsByHalfOnAFixedBatchWithin100Steps) { testing::check_loss_falls(kMixer); }

const nlohmann::json kConvMixer = testing::with_conv(kMixer, 4);

TEST(LinearAttentionConvModel, AddsOnlyTheConvParametersAndWindow) {
  testing::check_short_conv_adds_only_its_params(kMixer, 4, 96);
}
TEST(LinearAttentionConvModel, PrefillLogitsEqualStepByStepDecode) { testing::check_prefill_equals_decode(kConvMixer); }
TEST(LinearAttentionConvModel, ContinuingFromSavedStateEqualsOnePass) { testing::check_state_continuation(kConvMixer); }
TEST(LinearAttentionConvModel, ParameterGradientsMatchFiniteDifferences) {
  testing::check_parameter_gradients(kConvMixer);
}
TEST(LinearAttentionConvModel, LossFallsByHalfOnAFixedBatchWithin100Steps) { testing::check_loss_falls(kConvMixer); }

}  // namespace
}  // namespace speedlm
