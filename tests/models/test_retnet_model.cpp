// A tiny model of retnet layers: prefill == decode, state continuation, constant state bytes,
// gradients vs finite differences, the loss falls (recurrent_model_checks.h); the same with the
// optional short conv ("conv": 4), which adds only its parameters and window.
#include "recurrent_model_checks.h"

namespace speedlm {
namespace {

const nlohmann::json kMixer = nlohmann::json::parse(R"({"type": "retnet", "heads": 4, "chunk": 16})");

TEST(RetnetModel, PrefillLogitsEqualStepByStepDecode) { testing::check_prefill_equals_decode(kMixer); }
TEST(RetnetModel, ContinuingFromSavedStateEqualsOnePass) { testing::check_state_continuation(kMixer); }
TEST(RetnetModel, ParameterGradientsMatchFiniteDifferences) { testing::check_parameter_gradients(kMixer); }
TEST(RetnetModel, LossFallsByHalfOnAFixedBatchWithin100Steps) { testing::check_loss_falls(kMixer); }

const nlohmann::json kConvMixer = testing::with_conv(kMixer, 4);

TEST(RetnetConvModel, AddsOnlyTheConvParametersAndWindow) {
  testing::check_short_conv_adds_only_its_params(kMixer, 4, 128);
}
TEST(RetnetConvModel, PrefillLogitsEqualStepByStepDecode) { testing::check_prefill_equals_decode(kConvMixer); }
TEST(RetnetConvModel, ContinuingFromSavedStateEqualsOnePass) { testing::check_state_continuation(kConvMixer); }
TEST(RetnetConvModel, ParameterGradientsMatchFiniteDifferences) { testing::check_parameter_gradients(kConvMixer); }
TEST(RetnetConvModel, LossFallsByHalfOnAFixedBatchWithin100Steps) { testing::check_loss_falls(kConvMixer); }

}  // namespace
}  // namespace speedlm
