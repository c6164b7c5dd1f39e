// A tiny model of mamba (Mamba-1) layers: prefill == decode, state continuation, constant state
// bytes, gradients vs finite differences, the loss falls (recurrent_model_checks.h).
#include "recurrent_model_checks.h"

namespace speedlm {
namespace {

const nlohmann::json kMixer =
    nlohmann::json::parse(R"({"type": "mamba", "state_dim": 8, "expand": 2, "conv": 4, "dt_rank": 4, "chunk": 16})");

TEST(MambaModel, PrefillLogitsEqualStepByStepDecode) { testing::check_prefill_equals_decode(kMixer); }
TEST(MambaModel, ContinuingFromSavedStateEqualsOnePass) { testing::check_state_continuation(kMixer); }
TEST(MambaModel, ParameterGradientsMatchFiniteDifferences) { testing::check_parameter_gradients(kMixer); }
TEST(MambaModel, LossFallsByHalfOnAFixedBatchWithin100Steps) { testing::check_loss_falls(kMixer); }

}  // namespace
}  // namespace speedlm
