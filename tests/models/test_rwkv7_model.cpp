// A tiny model of rwkv7 layers (the value residual crosses layers): prefill == decode, state continuation, constant state
// bytes, gradients vs finite differences, the loss falls (recurrent_model_checks.h).
#include "recurrent_model_checks.h"

namespace speedlm {
namespace {

const nlohmann::json kMixer =
    nlohmann::json::parse(R"({"type": "rwkv7", "head_dim": 8, "decay_rank": 4, "a_rank": 4, "v_rank": 4, "gate_rank": 8, "chunk": 16})");

TEST(Rwkv7Model, PrefillLogitsEqualStepByStepDecode) { testing::check_prefill_equals_decode(kMixer); }
TEST(Rwkv7Model, ContinuingFromSavedStateEqualsOnePass) { testing::check_state_continuation(kMixer); }
TEST(Rwkv7Model, ParameterGradientsMatchFiniteDifferences) { testing::check_parameter_gradients(kMixer); }
TEST(Rwkv7Model, LossFallsByHalfOnAFixedBatchWithin100Steps) { testing::check_loss_falls(kMixer); }

}  // namespace
}  // namespace speedlm
