// A tiny model of gla layers: prefill == decode, state continuation, constant state bytes,
// gradients vs finite differences, the loss falls (recurrent_model_checks.h); the same with the
// optional short conv ("conv": 4), which adds only its parameters and window.
#include "recurrent_model_checks.h"

namespace speedlm {
namespace {

const nlohmann::json kMixer = nlohmann::json::parse(R"({"type": "gla", "heads": 2, "key_dim": 8, "value_dim": 16, "gate_rank": 4, "chunk": 16})");

TEST(GlaModel, PrefillLogitsEqualStepByStepDecode) { testing::check_prefill_equals_decode(kMixer); }
TEST(GlaModel, ContinuingFromSavedStateEqualsOnePass) { testing::check_state_continuation(kMixer); }
TEST(GlaModel, ParameterGradientsMatchFiniteDifferences) { testing::check_parameter_gradients(kMixer); }
TEST(GlaModel, LossFallsByHalfOnAFixedBatchWithin100Steps) { testing::check_loss_falls(kMixer); }

const nlohmann::json kConvMixer = testing::with_conv(kMixer, 4);

TEST(GlaConvModel, AddsOnlyTheConvParametersAndWindow) {
  testing::check_short_conv_adds_only_its_params(kMixer, 4, 64);
}
TEST(GlaConvModel, PrefillLogitsEqualStepByStepDecode) { testing::check_prefill_equals_decode(kConvMixer); }
TEST(GlaConvModel, ContinuingFromSavedStateEqualsOnePass) { testing::check_state_continuation(kConvMixer); }
TEST(GlaConvModel, ParameterGradientsMatchFiniteDifferences) { testing::check_parameter_gradients(kConvMixer); }
TEST(GlaConvModel, LossFallsByHalfOnAFixedBatchWithin100Steps) { testing::check_loss_falls(kConvMixer); }

}  // namespace
}  // namespace speedlm
