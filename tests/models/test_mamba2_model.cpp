// A tiny model of mamba2 layers: prefill == decode, state continuation, constant state bytes,
// gradients vs finite differences, the loss falls (recurrent_model_checks.h).
#include "recurrent_model_checks.h"

namespace speedlm {
namespace {

const nlohmann::json kMixer = nlohmann::json::parse(R"({"type": "mamba2", "head_dim": 16, "state_dim": 8, "expand": 2, "conv": 4, "chunk": 16})");

TEST(Mamba2Model, PrefillLogitsEqualStepByStepDecode) { testing::check_prefill_equals_decode(kMixer); }
TEST(Mamba2Model, ContinuingFromSavedStateEqualsOnePass) { testing::check_state_continuation(kMixer); }
TEST(Mamba2Model, ParameterGradientsMatchFiniteDifferences) { testing::check_parameter_gradients(kMixer); }
TEST(Mamba2Model, LossFallsByHalfOnAFixedBatchWithin100Steps) { testing::check_loss_falls(kMixer); }

}  // namespace
}  // namespace speedlm
