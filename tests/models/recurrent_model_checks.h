// Model-level checks shared by the recurrent-mixer model tests (test_<mixer>_model.cpp), on a
// tiny model whose layers are all of one mixer and one FFN (SwiGLU unless given): prefill logits
// == step-by-step decode logits, continuing from a saved state == one long pass, constant state
// bytes, parameter gradients vs finite differences, and the loss falls on a fixed batch; for
// mixers with an optional short conv ("conv": K), what the conv adds.
#pragma once

#include <gtest/gtest.h>

#include <cmath>

#include "autograd/functions.h"
#include "models/lm.h"
#include "model_checks.h"
#include "train/adamw.h"

namespace speedlm::testing {

inline nlohmann::json swiglu_ffn() { return {{"type", "swiglu"}, {"hidden", 48}}; }

inline nlohmann::json tiny_recurrent_config(const nlohmann::json& mixer, const nlohmann::json& ffn = swiglu_ffn()) {
  nlohmann::json j = nlohmann::json::parse(R"({
    "vocab_size": 97, "d_model": 32, "n_layers": 2, "tie_embeddings": true, "init_std": 0.1,
    "layers": ["mix"]
  })");
  j["mixers"]["mix"] = mixer;
  j["ffn"] = ffn;
  return j;
}

inline Tensor ids_range(const Tensor& ids, int64_t b, int64_t t0, int64_t t1) {
  const int64_t T = ids.dim(1);
  return Tensor::from_i32({1, t1 - t0}, std::vector<int32_t>(ids.i32() + b * T + t0, ids.i32() + b * T + t1));
}

inline LanguageModel tiny_model(const nlohmann::json& mixer, uint64_t seed, const nlohmann::json& ffn = swiglu_ffn()) {
  auto cfg = ModelConfig::from_json(tiny_recurrent_config(mixer, ffn));
  EXPECT_TRUE(cfg.is_ok()) << cfg.status().message();
  LanguageModel m(cfg.value());
  m.init(seed);
  return m;
}

inline void check_prefill_equals_decode(const nlohmann::json& mixer, const nlohmann::json& ffn = swiglu_ffn()) {
  LanguageModel model = tiny_model(mixer, 7, ffn);
  expect_prefill_equals_decode(model, 2, 40);
}

// Prefill in two calls long enough for the chunk form (the second from the first's state), then
// decode; equal to one pass. Restoring a snapshot replays identically; bytes stay constant.
inline void check_state_continuation(const nlohmann::json& mixer, const nlohmann::json& ffn = swiglu_ffn()) {
  LanguageModel model = tiny_model(mixer, 11, ffn);
  const int64_t T = 100, V = 97, T1 = 37, T2 = 90;
  Tensor ids = random_ids(1, T, V, 5);
  ag::NoGradGuard guard;
  Tensor full = model.forward(ids).value();
  ModelState state = model.make_state(1);
  const size_t empty_bytes = state.bytes();
  Tensor a = model.forward_last(ids_range(ids, 0, 0, T1), state);
  EXPECT_LE(rms_rel(a.f32(), full.f32() + (T1 - 1) * V, V), 1e-5);
  ModelState snap = state.snapshot();
  Tensor b = model.forward_last(ids_range(ids, 0, T1, T2), state);
  EXPECT_LE(rms_rel(b.f32(), full.f32() + (T2 - 1) * V, V), 1e-5);
  for (int64_t t = T2; t < T; ++t) {
    Tensor c = model.forward_last(ids_range(ids, 0, t, t + 1), state);
    EXPECT_LE(rms_rel(c.f32(), full.f32() + t * V, V), 1e-5) << "t=" << t;
  }
  EXPECT_EQ(state.length(), T);
  EXPECT_EQ(state.bytes(), empty_bytes) << "a recurrent state must not grow with the context";
  state.restore(snap);
  EXPECT_EQ(state.length(), T1);
  Tensor again = model.forward_last(ids_range(ids, 0, T1, T2), state);
  for (int64_t i = 0; i < V; ++i) ASSERT_EQ(again.f32()[i], b.f32()[i]);
}

inline void check_parameter_gradients(const nlohmann::json& mixer, const nlohmann::json& ffn = swiglu_ffn()) {
  LanguageModel model = tiny_model(mixer, 13, ffn);
  EXPECT_GT(3 * expect_gradients_match_finite_differences(model, 19, 3).size(), 20u);
}

inline void check_loss_falls(const nlohmann::json& mixer, const nlohmann::json& ffn = swiglu_ffn()) {
  LanguageModel model = tiny_model(mixer, 17, ffn);
  expect_loss_halves_within_100_steps(model);
}

inline nlohmann::json with_conv(nlohmann::json mixer, int64_t kernel) {
  mixer["conv"] = kernel;
  return mixer;
}

// "conv": K adds exactly conv.weight [C, K] and conv.bias [C] after the mixer's w_o (its last parameter) and
// a [B, K-1, C] f32 window to its state; without it the layer keeps its own list, in order.
inline void check_short_conv_adds_only_its_params(const nlohmann::json& mixer, int64_t kernel, int64_t channels) {
  LanguageModel plain = tiny_model(mixer, 1), conv = tiny_model(with_conv(mixer, kernel), 1);
  std::vector<std::string> expected, got;
  for (const auto& p : plain.params()) {
    expected.push_back(p.name);
    EXPECT_EQ(p.name.find("conv."), std::string::npos) << p.name;
    if (p.name.ends_with("mixer.w_o")) {
      const std::string layer = p.name.substr(0, p.name.size() - 3);
      expected.push_back(layer + "conv.weight");
      expected.push_back(layer + "conv.bias");
    }
  }
  for (const auto& p : conv.params()) {
    got.push_back(p.name);
    if (p.name.ends_with("conv.weight")) {
      EXPECT_EQ(p.var->value().shape(), (Shape{channels, kernel}));
    } else if (p.name.ends_with("conv.bias")) {
      EXPECT_EQ(p.var->value().shape(), (Shape{channels}));
    }
  }
  EXPECT_EQ(got, expected);
  const int64_t layers = plain.config().n_layers;
  EXPECT_EQ(conv.make_state(2).bytes() - plain.make_state(2).bytes(),
            static_cast<size_t>(layers * 2 * (kernel - 1) * channels) * sizeof(float));
}

}  // namespace speedlm::testing
