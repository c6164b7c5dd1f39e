// A tiny model of retnet layers: prefill == decode, state continuation, constant state bytes,
// gradients vs finite differences, the loss falls (recurrent_model_checks.h).
#include "recurrent_model_checks.h"

namespace speedlm {
namespace {

const nlohmann::json kMixer = nlohmann::json::parse(R"({"type": "retnet", "heads": 4, "chunk": 16})");

TEST(RetnetModel, PrefillLogitsEqualStepByStepDecode) { testing::check_prefill_equals_decode(kMixer); }
TEST(RetnetModel, ContinuingFromSavedStateEqualsOnePass) { testing::check_state_continuation(kMixer); }
TEST(RetnetModel, ParameterGradientsMatchFiniteDifferences) { testing::check_parameter_gradients(kMixer); }
TEST(RetnetModel, LossFallsByHalfOnAFixedBatchWithin100Steps) { testing::check_loss_falls(kMixer); }

}  // namespace
}  // namespace speedlm
