// Model-level checks of the dense Transformer: prefill == step-by-step decode,
// gradients vs finite differences, the loss falls on a fixed batch, snapshot/restore.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functions.h"
#include "models/lm.h"
#include "model_checks.h"
#include "tiny_model.h"
#include "train/adamw.h"

namespace speedlm {
namespace {

using testing::random_ids;
using testing::rms_rel;

// The tiny model with a sliding window shorter than the test sequences, a softcap and sinks.
ModelConfig windowed_config() {
  nlohmann::json j = testing::tiny_config_json();
  j["mixers"]["attn"]["window"] = 5;
  j["mixers"]["attn"]["softcap"] = 2.0;
  j["mixers"]["attn"]["sinks"] = true;
  return ModelConfig::from_json(j).value();
}

void expect_prefill_equals_decode(const ModelConfig& config, double tol = 1e-5) {
  LanguageModel model(config);
  model.init(7);
  testing::expect_prefill_equals_decode(model, 2, 21, tol);
}

TEST(Transformer, PrefillLogitsEqualStepByStepDecode) { expect_prefill_equals_decode(testing::tiny_config()); }

TEST(Transformer, SlidingWindowSoftcapSinksPrefillEqualsDecode) {
  expect_prefill_equals_decode(windowed_config());
  // The window matters: without it the same weights give other logits.
  nlohmann::json j = windowed_config().to_json();
  j["mixers"]["attn"]["window"] = 0;
  LanguageModel windowed(windowed_config()), full(ModelConfig::from_json(j).value());
  windowed.init(7);
  full.init(7);
  ag::NoGradGuard guard;
  Tensor ids = random_ids(1, 21, 97, 3);
  Tensor a = windowed.forward(ids).value(), b = full.forward(ids).value();
  EXPECT_EQ(a.f32()[0], b.f32()[0]) << "the first token sees the same key with or without a window";
  EXPECT_GT(rms_rel(a.f32() + 20 * 97, b.f32() + 20 * 97, 97), 1e-4) << "the last token sees fewer keys";
}

// A window decodes through paged_decode in place; pages of 4 tokens put the
// window's first token mid-page (the copied head of the range) and trim whole pages behind it.
ModelConfig paged_window_config(const char* dtype) {
  nlohmann::json j = testing::tiny_config_json();
  j["mixers"]["attn"]["window"] = 6;
  j["mixers"]["attn"]["kv_cache"] = {{"dtype", dtype}, {"page_size", 4}};
  return ModelConfig::from_json(j).value();
}

TEST(Transformer, PagedWindowPrefillEqualsDecode) { expect_prefill_equals_decode(paged_window_config("f32")); }

// int8 / bf16 K/V: each element is rounded by at most max|row| / 254, resp. 2^-8 |x|
// (paged_decode/README.md), 0.39% at most; the logits move by about as much. The bound 1e-2
// (attention.h) is 2.5x the per-element storage error; measured here: int8 5.5e-3, bf16 2.8e-3.
TEST(Transformer, PagedWindowInt8PrefillEqualsDecodeWithinTheStorageBound) {
  expect_prefill_equals_decode(paged_window_config("int8"), 1e-2);
}

TEST(Transformer, PagedWindowBf16PrefillEqualsDecodeWithinTheStorageBound) {
  expect_prefill_equals_decode(paged_window_config("bf16"), 1e-2);
}

TEST(Transformer, ChunkedPrefillEqualsOnePass) {
  LanguageModel model(testing::tiny_config());
  model.init(11);
  const int64_t T = 30, V = 97;
  Tensor ids = random_ids(1, T, V, 5);
  ag::NoGradGuard guard;
  Tensor full = model.forward(ids).value();
  ModelState state = model.make_state(1);
  Tensor first = Tensor::from_i32({1, 17}, std::vector<int32_t>(ids.i32(), ids.i32() + 17));
  Tensor second = Tensor::from_i32({1, T - 17}, std::vector<int32_t>(ids.i32() + 17, ids.i32() + T));
  model.forward_last(first, state);
  ModelState snap = state.snapshot();
  Tensor last = model.forward_last(second, state);
  EXPECT_LE(rms_rel(last.f32(), full.f32() + (T - 1) * V, V), 1e-5);
  // Restoring the snapshot and decoding the same tokens again gives identical logits.
  state.restore(snap);
  Tensor again = model.forward_last(second, state);
  for (int64_t i = 0; i < V; ++i) ASSERT_EQ(again.f32()[i], last.f32()[i]);
  EXPECT_GT(state.bytes(), snap.bytes() / 2);
}

void expect_gradients_match_finite_differences(const ModelConfig& config) {
  LanguageModel model(config);
  model.init(13);
  EXPECT_GT(3 * testing::expect_gradients_match_finite_differences(model, 9, 3).size(), 20u);
}

TEST(Transformer, ParameterGradientsMatchFiniteDifferences) {
  expect_gradients_match_finite_differences(testing::tiny_config());
}

// Window, softcap and the sink logits (a parameter of their own) through the whole model.
TEST(Transformer, WindowSoftcapSinksGradientsMatchFiniteDifferences) {
  expect_gradients_match_finite_differences(windowed_config());
}

TEST(Transformer, LossFallsByHalfOnAFixedBatchWithin100Steps) {
  LanguageModel model(testing::tiny_config());
  model.init(17);
  testing::expect_loss_halves_within_100_steps(model);
}

TEST(Transformer, ForwardIsDeterministic) {
  LanguageModel a(testing::tiny_config()), b(testing::tiny_config());
  a.init(5), b.init(5);
  Tensor ids = random_ids(2, 16, 97, 1);
  ag::NoGradGuard guard;
  Tensor la = a.forward(ids).value(), lb = b.forward(ids).value();
  for (int64_t i = 0; i < la.numel(); ++i) ASSERT_EQ(la.f32()[i], lb.f32()[i]);
}

}  // namespace
}  // namespace speedlm
