// Model-level checks of MoE layers: prefill == step-by-step decode, determinism, the balancing
// losses reach the router, the bias update balances a skewed router, config validation.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functions.h"
#include "models/lm.h"
#include "model_checks.h"
#include "tiny_moe_model.h"
#include "tiny_model.h"
#include "train/adamw.h"

namespace speedlm {
namespace {

using testing::random_ids;

class MoeModel : public ::testing::TestWithParam<int> {
 protected:
  ModelConfig config() const { return GetParam() == 0 ? testing::tiny_moe_config() : testing::tiny_deepseek_config(); }
};

TEST_P(MoeModel, PrefillLogitsEqualStepByStepDecode) {
  LanguageModel model(config());
  model.init(7);
  testing::expect_prefill_equals_decode(model, 2, 21);
}

TEST_P(MoeModel, ForwardAndBackwardAreDeterministicWithASeed) {
  LanguageModel a(config()), b(config());
  a.init(5), b.init(5);
  const int64_t B = 2, T = 16, V = 97;
  Tensor ids = random_ids(B, T, V, 1), targets = random_ids(B * T, 1, V, 2).reshape({B * T});
  for (LanguageModel* m : {&a, &b}) {
    ag::Var loss = ag::cross_entropy(m->forward(ids), targets, {});
    ag::Var aux = m->take_aux_loss();
    ASSERT_TRUE(aux.defined());
    ag::backward(ag::add(loss, aux));
  }
  for (size_t i = 0; i < a.params().size(); ++i) {
    const auto& pa = a.params()[i];
    const auto& pb = b.params()[i];
    ASSERT_EQ(pa.var->grad().defined(), pb.var->grad().defined()) << pa.name;
    if (!pa.var->grad().defined()) continue;
    for (int64_t j = 0; j < pa.var->grad().numel(); ++j)
      ASSERT_EQ(pa.var->grad().f32()[j], pb.var->grad().f32()[j]) << pa.name << "[" << j << "]";
  }
}

TEST_P(MoeModel, TrainingReachesTheRouterAndTheExperts) {
  LanguageModel model(config());
  model.init(13);
  const int64_t B = 2, T = 9, V = 97;
  Tensor ids = random_ids(B, T, V, 9), targets = random_ids(B * T, 1, V, 10).reshape({B * T});
  ag::Var loss = ag::cross_entropy(model.forward(ids), targets, {});
  ag::backward(ag::add(loss, model.take_aux_loss()));
  int routers = 0;
  for (const auto& p : model.params()) {
    bool is_bias = p.name.ends_with("router.bias");
    EXPECT_EQ(p.var->grad().defined(), !is_bias) << p.name;
    if (p.name.ends_with("router.weight") || p.name.find("experts") != std::string::npos) {
      double norm = 0;
      for (int64_t j = 0; j < p.var->grad().numel(); ++j) norm += std::fabs(p.var->grad().f32()[j]);
      EXPECT_GT(norm, 0.0) << p.name;
      routers += p.name.ends_with("router.weight");
    }
  }
  EXPECT_GE(routers, 1);
}

TEST_P(MoeModel, LossFallsOnAFixedBatch) {
  LanguageModel model(config());
  model.init(17);
  const int64_t B = 4, T = 32, V = 97;
  Tensor ids = random_ids(B, T, V, 21), targets = random_ids(B * T, 1, V, 22).reshape({B * T});
  AdamW opt(model.params(), AdamWParams{0.9, 0.95, 1e-8, 0.0});
  float first = 0, last = 0;
  for (int step = 0; step < 100; ++step) {
    ag::Var loss = ag::cross_entropy(model.forward(ids), targets, {});
    ag::Var aux = model.take_aux_loss();
    ag::backward(aux.defined() ? ag::add(loss, aux) : loss);
    clip_grad_norm(model.params(), 1.0);
    opt.step(3e-3);
    opt.zero_grad();
    model.update_router_bias();
    (step == 0 ? first : last) = loss.value().f32()[0];
  }
  EXPECT_LE(last, 0.5f * first) << "first " << first << " last " << last;
}

INSTANTIATE_TEST_SUITE_P(Configs, MoeModel, ::testing::Values(0, 1),
                         [](const auto& info) { return info.param == 0 ? "mixtral" : "deepseek"; });

// A router skewed towards the last experts (logit offsets 0, 0.5, ..., 3.5 from a constant input
// feature) under the sign-rule bias update, rate 0.01: balanced (max/mean <= 1.5) within 50 steps
// (23 on this seed, from max/mean 3.97).
TEST(MoeBalance, BiasUpdateBalancesASkewedRouter) {
  nn::MoeConfig cfg;
  cfg.experts = 8, cfg.top_k = 2, cfg.hidden = 8, cfg.router = "sigmoid", cfg.bias_update_rate = 0.01;
  const int64_t D = 16, N = 512;
  nn::MoE moe(cfg, D);
  moe.init(nn::InitSpec{0.1, 0.1}, 3);
  nn::ParamList params;
  moe.collect_params("", params);
  Tensor& router = params[0].var->value();  // [E, D]
  ASSERT_EQ(params[0].name, "router.weight");
  for (int64_t e = 0; e < cfg.experts; ++e) router.f32()[e * D] = 0.5f * static_cast<float>(e);
  Tensor x = Tensor::empty({N, D});
  Rng rng(11);
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = i % D == 0 ? 1.0f : static_cast<float>(rng.normal());
  double first = 0, ratio = 0;
  int step = 0;
  for (; step < 50; ++step) {
    moe.forward(ag::Var(x), N);
    ag::clear_tape();
    ratio = moe.take_load().max_over_mean();
    if (step == 0) first = ratio;
    if (ratio <= 1.5) break;
    moe.update_bias();
  }
  EXPECT_GE(first, 2.5) << "the router is not skewed";
  EXPECT_LE(ratio, 1.5) << "still unbalanced after " << step << " steps";
  // The least loaded expert's bias went up.
  EXPECT_GT(moe.bias().value().f32()[0], 0.0f);
}

std::string error_of(nlohmann::json j) {
  auto r = ModelConfig::from_json(j);
  return r ? "" : r.status().message();
}

TEST(MoeConfig, ValidatesKeysAndValuesWithTheirPath) {
  auto j = testing::tiny_moe_config_json();
  ASSERT_EQ(error_of(j), "");
  j["ffns"]["moe"]["expert"] = 4;
  EXPECT_EQ(error_of(j), "[config] ffns.moe.expert: unknown key");
  j = testing::tiny_moe_config_json();
  j["ffns"]["moe"]["top_k"] = 5;
  EXPECT_EQ(error_of(j), "[config] ffns.moe.top_k = 5: must be in [1, 4]");
  j = testing::tiny_moe_config_json();
  j["ffns"]["moe"]["router"] = "relu";
  EXPECT_EQ(error_of(j).substr(0, 41), "[config] ffns.moe.router = \"relu\": must b");
  j = testing::tiny_deepseek_config_json();
  j["ffn"]["groups"] = 3;
  EXPECT_EQ(error_of(j), "[config] ffn.groups = 3: must divide experts = 8");
  j = testing::tiny_deepseek_config_json();
  j["ffn"]["topk_groups"] = 1;
  EXPECT_EQ(error_of(j), "[config] ffn.topk_groups = 1: 1 groups of 2 experts hold fewer than top_k = 3");
  j = testing::tiny_moe_config_json();
  j["ffn_layers"] = {"dense", "mo"};
  EXPECT_EQ(error_of(j), "[config] ffn_layers[1] = \"mo\": no such entry in ffns");
  j = testing::tiny_moe_config_json();
  j["ffn"] = {{"type", "swiglu"}, {"hidden", 8}};
  EXPECT_EQ(error_of(j), "[config] ffns: give either ffn (every layer) or ffns with ffn_layers");
  j = testing::tiny_moe_config_json();
  j["ffns"]["moe"]["capacity_factor"] = -1;
  EXPECT_EQ(error_of(j), "[config] ffns.moe.capacity_factor = -1: must be in [0, 1000]");
}

TEST(MoeConfig, RoundTripsAndBuildsPerLayerFfns) {
  for (const auto& j : {testing::tiny_moe_config_json(), testing::tiny_deepseek_config_json()}) {
    auto c = ModelConfig::from_json(j);
    ASSERT_TRUE(c) << c.status().message();
    auto again = ModelConfig::from_json(c->to_json());
    ASSERT_TRUE(again) << again.status().message();
    EXPECT_EQ(again->to_json(), c->to_json());
  }
  LanguageModel model(testing::tiny_moe_config());
  EXPECT_EQ(model.config().layer_ffn(0).type, "swiglu");
  EXPECT_EQ(model.config().layer_ffn(1).type, "moe");
  // Active parameters: the router plus 2 of the 4 experts of layer 1.
  const int64_t D = 32, F = 24;
  EXPECT_EQ(model.num_params() - model.active_params(), 2 * 3 * F * D + 4);
}

}  // namespace
}  // namespace speedlm
