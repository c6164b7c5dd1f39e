// AdamW against its formula in double, weight-decay groups, clipping, the LR schedule.
#include <gtest/gtest.h>

#include <cmath>

#include "train/adamw.h"
#include "train/schedule.h"
#include "train/train_config.h"

namespace speedlm {
namespace {

TEST(AdamW, MatchesTheFormulaOverSeveralSteps) {
  ag::Var w(Tensor::from({3}, {0.5f, -1.0f, 2.0f}), true), n(Tensor::from({2}, {1.0f, 1.0f}), true);
  nn::ParamList params = {{"w", &w, true}, {"norm", &n, false}};
  AdamWParams hp{0.9, 0.95, 1e-8, 0.1};
  AdamW opt(params, hp);
  double pw[3] = {0.5, -1.0, 2.0}, m[3] = {}, v[3] = {}, pn = 1.0, mn = 0, vn = 0;
  const double g_w[3] = {0.1, -0.2, 0.3}, g_n = 0.05, lr = 0.01;
  for (int t = 1; t <= 5; ++t) {
    for (int i = 0; i < 3; ++i) w.grad_buffer().f32()[i] = static_cast<float>(g_w[i]);
    n.grad_buffer().fill(static_cast<float>(g_n));
    opt.step(lr);
    double bc1 = 1 - std::pow(0.9, t), bc2 = 1 - std::pow(0.95, t);
    for (int i = 0; i < 3; ++i) {
      pw[i] *= 1 - lr * 0.1;
      m[i] = 0.9 * m[i] + 0.1 * g_w[i];
      v[i] = 0.95 * v[i] + 0.05 * g_w[i] * g_w[i];
      pw[i] -= lr * (m[i] / bc1) / (std::sqrt(v[i] / bc2) + 1e-8);
      EXPECT_NEAR(w.value().f32()[i], pw[i], 1e-6) << "t=" << t << " i=" << i;
    }
    mn = 0.9 * mn + 0.1 * g_n;  // no decay on the norm weight
    vn = 0.95 * vn + 0.05 * g_n * g_n;
    pn -= lr * (mn / bc1) / (std::sqrt(vn / bc2) + 1e-8);
    EXPECT_NEAR(n.value().f32()[0], pn, 1e-6);
  }
  EXPECT_EQ(opt.steps_taken(), 5);
}

TEST(AdamW, ClippingScalesToTheMaxNorm) {
  ag::Var a(Tensor::zeros({2}), true), b(Tensor::zeros({1}), true);
  a.grad_buffer().f32()[0] = 3.0f, a.grad_buffer().f32()[1] = 0.0f;
  b.grad_buffer().f32()[0] = 4.0f;
  nn::ParamList params = {{"a", &a, true}, {"b", &b, true}};
  EXPECT_DOUBLE_EQ(clip_grad_norm(params, 10.0), 5.0);  // under the limit: unchanged
  EXPECT_FLOAT_EQ(b.grad().f32()[0], 4.0f);
  EXPECT_DOUBLE_EQ(clip_grad_norm(params, 1.0), 5.0);
  EXPECT_NEAR(grad_norm(params), 1.0, 1e-6);
}

TEST(Schedule, WarmupThenCosineToTheFloor) {
  const LrSchedule cos;  // cosine to 0.1
  EXPECT_DOUBLE_EQ(lr_at(0, 1.0, cos, 10, 110), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(9, 1.0, cos, 10, 110), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(10, 1.0, cos, 10, 110), 1.0);
  EXPECT_NEAR(lr_at(60, 1.0, cos, 10, 110), 0.55, 1e-12);  // halfway: (1 + 0.1) / 2
  EXPECT_NEAR(lr_at(110, 1.0, cos, 10, 110), 0.1, 1e-12);
  EXPECT_NEAR(lr_at(500, 1.0, cos, 10, 110), 0.1, 1e-12);
}

TEST(Schedule, WsdHoldsThePeakThenDecaysLinearly) {
  const LrSchedule wsd{LrSchedule::Kind::kWsd, 0.1, 0.25};  // the last 25 of 100 steps decay
  EXPECT_DOUBLE_EQ(lr_at(4, 1.0, wsd, 10, 100), 0.5);     // warmup as with cosine
  EXPECT_DOUBLE_EQ(lr_at(10, 1.0, wsd, 10, 100), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(75, 1.0, wsd, 10, 100), 1.0);    // the decay starts at 75
  EXPECT_NEAR(lr_at(80, 1.0, wsd, 10, 100), 0.1 + 0.9 * 20.0 / 25.0, 1e-12);
  EXPECT_NEAR(lr_at(100, 1.0, wsd, 10, 100), 0.1, 1e-12);
  EXPECT_NEAR(lr_at(300, 1.0, wsd, 10, 100), 0.1, 1e-12);
}

TEST(Schedule, ParsedFromTheTrainSectionWithErrorsNamingTheValue) {
  TrainConfig c = TrainConfig::from_json({{"schedule", "wsd"}, {"decay_fraction", 0.3}, {"min_lr_ratio", 0.0}}).value();
  EXPECT_EQ(c.schedule.kind, LrSchedule::Kind::kWsd);
  EXPECT_DOUBLE_EQ(c.schedule.decay_fraction, 0.3);
  TrainConfig back = TrainConfig::from_json(c.to_json()).value();
  EXPECT_EQ(back.schedule.kind, LrSchedule::Kind::kWsd);
  EXPECT_DOUBLE_EQ(back.schedule.decay_fraction, 0.3);
  EXPECT_EQ(TrainConfig::from_json(nlohmann::json::object()).value().schedule.kind, LrSchedule::Kind::kCosine);
  Status bad = TrainConfig::from_json({{"schedule", "linear"}}).status();
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.message().find("linear"), std::string::npos) << bad.message();
  EXPECT_NE(bad.message().find("schedule"), std::string::npos) << bad.message();
  EXPECT_FALSE(TrainConfig::from_json({{"decay_fraction", 0.0}}).is_ok());
  EXPECT_FALSE(TrainConfig::from_json({{"decay_fraction", 1.5}}).is_ok());
}

}  // namespace
}  // namespace speedlm
