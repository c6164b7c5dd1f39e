// The MLA mixer: absorbed decode over the latent cache == the expanded form (mixer level, with
// and without a query low-rank, v_head_dim below and equal to the q.k head dim), chunked prefill,
// cache bytes, and model level: prefill logits == step-by-step decode logits, parameter
// gradients vs finite differences, the loss falls.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functions.h"
#include "memory/latent_kv_cache.h"
#include "models/lm.h"
#include "nn/mixers/mla.h"
#include "train/adamw.h"
#include "model_checks.h"

namespace speedlm {
namespace {

nlohmann::json mla_json(int64_t q_lora, int64_t dv) {
  return {{"type", "mla"},           {"heads", 4},         {"q_lora_rank", q_lora}, {"kv_lora_rank", 12},
          {"qk_nope_head_dim", 8}, {"qk_rope_head_dim", 4}, {"v_head_dim", dv}};
}

ModelConfig mla_model(const std::vector<std::string>& layers) {
  nlohmann::json j = {{"vocab_size", 97}, {"d_model", 32},   {"n_layers", 2},
                      {"init_std", 0.1},  {"layers", layers}, {"ffn", {{"type", "swiglu"}, {"hidden", 48}}}};
  j["mixers"]["mla"] = mla_json(16, 6);
  j["mixers"]["attn"] = {{"type", "attention"}, {"heads", 4}, {"kv_heads", 2}, {"head_dim", 8}};
  auto c = ModelConfig::from_json(j);
  EXPECT_TRUE(c.is_ok()) << c.status().message();
  return c.value();
}

Tensor random_tensor(Shape s, double sd, uint64_t seed) {
  Rng rng(seed);
  Tensor t = Tensor::empty(std::move(s));
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = static_cast<float>(sd * rng.normal());
  return t;
}

using testing::random_ids;
using testing::rms_rel;

class MlaForms : public ::testing::TestWithParam<std::pair<int64_t, int64_t>> {};

TEST_P(MlaForms, AbsorbedDecodeEqualsExpandedForm) {
  const auto [q_lora, dv] = GetParam();
  const int64_t D = 32, B = 2, T = 19, T1 = 7;
  auto p = nn::MlaMixerParams::parse(mla_json(q_lora, dv), "mla", D);
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  nn::MlaMixer m(*p, D);
  m.init(nn::InitSpec{0.3, 0.3}, 5);
  Tensor x = random_tensor({B * T, D}, 1.0, 6);  // [B*T, D]
  ag::NoGradGuard guard;
  Tensor full = m.forward(ag::Var(x), B, T, nullptr).value();  // expanded heads
  // Prefill the first T1 tokens through the latent cache, then decode the rest one by one.
  auto state = m.make_state(B);
  Tensor x1 = Tensor::empty({B * T1, D});
  for (int64_t b = 0; b < B; ++b) std::copy_n(x.f32() + b * T * D, T1 * D, x1.f32() + b * T1 * D);
  Tensor pre = m.forward(ag::Var(x1), B, T1, state.get()).value();
  for (int64_t b = 0; b < B; ++b)
    EXPECT_LE(rms_rel(pre.f32() + b * T1 * D, full.f32() + b * T * D, T1 * D), 1e-5) << "prefill b=" << b;
  for (int64_t t = T1; t < T; ++t) {
    Tensor xt = Tensor::empty({B, D});
    for (int64_t b = 0; b < B; ++b) std::copy_n(x.f32() + (b * T + t) * D, D, xt.f32() + b * D);
    Tensor y = m.step(xt, *state);
    for (int64_t b = 0; b < B; ++b)
      EXPECT_LE(rms_rel(y.f32() + b * D, full.f32() + (b * T + t) * D, D), 1e-5) << "b=" << b << " t=" << t;
  }
  EXPECT_EQ(state->length(), T);
  EXPECT_EQ(state->kind(), MemoryKind::LatentKv);
  EXPECT_EQ(state->bytes_per_token(), (12 + 4) * sizeof(float));
  EXPECT_GE(state->bytes(), static_cast<size_t>(B * T) * state->bytes_per_token());
}

INSTANTIATE_TEST_SUITE_P(Dims, MlaForms,
                         ::testing::Values(std::pair<int64_t, int64_t>{16, 6}, std::pair<int64_t, int64_t>{0, 6},
                                           std::pair<int64_t, int64_t>{16, 12}));

TEST(Mla, ConfigErrorsNameTheField) {
  nlohmann::json j = mla_json(0, 13);
  EXPECT_EQ(nn::validate_mixer_config(j, "mixers.m", 32).message(),
            "[config] mixers.m.v_head_dim = 13: must be <= qk_nope_head_dim + qk_rope_head_dim (12); values are "
            "zero-padded to the q.k head dim");
  j = mla_json(0, 6);
  j["qk_rope_head_dim"] = 3;
  EXPECT_EQ(nn::validate_mixer_config(j, "mixers.m", 32).message(),
            "[config] mixers.m.qk_rope_head_dim = 3: must be even (RoPE pairs)");
  j = mla_json(0, 6);
  j.erase("kv_lora_rank");
  EXPECT_FALSE(nn::validate_mixer_config(j, "mixers.m", 32).is_ok());
}

TEST(MlaModel, PrefillLogitsEqualStepByStepDecode) {
  for (const auto& layers : {std::vector<std::string>{"mla"}, std::vector<std::string>{"mla", "attn"}}) {
    LanguageModel model(mla_model(layers));
    model.init(7);
    SCOPED_TRACE(layers.size());
    testing::expect_prefill_equals_decode(model, 2, 21);  // expanded heads vs absorbed decode
  }
}

TEST(MlaModel, ParameterGradientsMatchFiniteDifferences) {
  LanguageModel model(mla_model({"mla"}));
  model.init(13);
  // 7 MLA parameters per layer (with the query low-rank), 2 layers.
  EXPECT_EQ(testing::expect_gradients_match_finite_differences(model, 9, 4, "mixer").size(), 7u * 2);
}

TEST(MlaModel, LossFallsByHalfOnAFixedBatchWithin100Steps) {
  LanguageModel model(mla_model({"mla"}));
  model.init(17);
  testing::expect_loss_halves_within_100_steps(model);
}

}  // namespace
}  // namespace speedlm
