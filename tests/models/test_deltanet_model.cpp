// A tiny model of deltanet layers: prefill == decode, state continuation, constant state
// bytes, gradients vs finite differences, the loss falls (recurrent_model_checks.h).
#include "recurrent_model_checks.h"

namespace speedlm {
namespace {

const nlohmann::json kMixer =
    nlohmann::json::parse(R"({"type": "deltanet", "heads": 2, "head_dim": 8, "expand_v": 2, "conv": 4, "chunk": 16})");

TEST(DeltaNetModel, PrefillLogitsEqualStepByStepDecode) { testing::check_prefill_equals_decode(kMixer); }
TEST(DeltaNetModel, ContinuingFromSavedStateEqualsOnePass) { testing::check_state_continuation(kMixer); }
TEST(DeltaNetModel, ParameterGradientsMatchFiniteDifferences) { testing::check_parameter_gradients(kMixer); }
TEST(DeltaNetModel, LossFallsByHalfOnAFixedBatchWithin100Steps) { testing::check_loss_falls(kMixer); }

}  // namespace
}  // namespace speedlm
