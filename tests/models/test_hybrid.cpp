// Hybrids: an inter-layer stack (attention, a Hymba-style intra-layer hybrid, mamba2) whose
// hymba layer runs attention beside mamba2 or beside attention with other head counts.
// Prefill == step-by-step decode, memory routed per layer, whole-model snapshot/restore,
// gradients, config errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "autograd/functions.h"
#include "memory/composite_state.h"
#include "memory/paged_kv_cache.h"
#include "models/lm.h"
#include "nn/mixers/hymba.h"
#include "model_checks.h"
#include "tiny_model.h"

namespace speedlm {
namespace {

const nlohmann::json kAttnBranch = {{"type", "attention"}, {"heads", 2}, {"kv_heads", 1}, {"head_dim", 16}};
const nlohmann::json kMamba2 = {{"type", "mamba2"}, {"head_dim", 16}, {"state_dim", 8}, {"expand", 2}, {"conv", 4},
                                {"chunk", 16}};

// Layers: attention, a hymba layer (attention + `second` side by side), a mamba2 layer.
nlohmann::json hybrid_json(const nlohmann::json& second = kMamba2, bool out_proj = true) {
  nlohmann::json j = testing::tiny_config_json();
  j["n_layers"] = 3;
  j["layers"] = {"attn", "hy", "m2"};
  j["mixers"]["m2"] = kMamba2;
  j["mixers"]["hy"] = {{"type", "hymba"},
                       {"out_proj", out_proj},
                       {"branches", {{{"type", "attention"}, {"heads", 4}, {"kv_heads", 2}, {"head_dim", 8}}, second}}};
  return j;
}

ModelConfig hybrid_config(const nlohmann::json& second = kMamba2, bool out_proj = true) {
  return ModelConfig::from_json(hybrid_json(second, out_proj)).value();
}

using testing::random_ids;
using testing::rms_rel;

TEST(Hybrid, PrefillLogitsEqualStepByStepDecode) {
  for (auto [second, out_proj] : {std::pair{kMamba2, true}, {kAttnBranch, true}, {kMamba2, false}}) {
    LanguageModel model(hybrid_config(second, out_proj));
    model.init(7);
    testing::expect_prefill_equals_decode(model, 2, 19);
  }
}

TEST(Hybrid, MixerStepEqualsParallelForward) {
  const int64_t D = 32, B = 2, T = 9;
  auto p = nn::HymbaMixerParams::parse(hybrid_json(kAttnBranch)["mixers"]["hy"], "hy", D);
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  nn::HymbaMixer mixer(*p, D);
  mixer.init(nn::InitSpec{0.1, 0.1}, 5);
  Tensor x = Tensor::empty({B * T, D});
  Rng rng(2);
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.normal();
  ag::NoGradGuard guard;
  Tensor full = mixer.forward(ag::Var(x), B, T, nullptr).value();  // [B*T, D]
  auto state = mixer.make_state(B);
  for (int64_t t = 0; t < T; ++t) {
    Tensor xt = Tensor::empty({B, D});
    for (int64_t b = 0; b < B; ++b) std::copy_n(x.f32() + (b * T + t) * D, D, xt.f32() + b * D);
    Tensor yt = mixer.step(xt, *state);
    for (int64_t b = 0; b < B; ++b) EXPECT_LE(rms_rel(yt.f32() + b * D, full.f32() + (b * T + t) * D, D), 1e-5);
  }
}

TEST(Hybrid, MemoryIsRoutedPerLayer) {
  LanguageModel model(hybrid_config());
  model.init(3);
  const int64_t B = 2;
  ModelState state = model.make_state(B);
  ASSERT_EQ(state.layers.size(), 3u);
  EXPECT_EQ(state.layers[0]->kind(), MemoryKind::GrowingKv);
  EXPECT_EQ(state.layers[1]->kind(), MemoryKind::Composite);
  EXPECT_EQ(state.layers[2]->kind(), MemoryKind::Recurrent);
  auto& hy = static_cast<CompositeState&>(*state.layers[1]);
  ASSERT_EQ(hy.size(), 2u);
  EXPECT_EQ(hy.branch(0).kind(), MemoryKind::GrowingKv);
  EXPECT_EQ(hy.branch(1).kind(), MemoryKind::Recurrent);
  const size_t recurrent = state.layers[2]->bytes();
  EXPECT_GT(recurrent, 0u);
  EXPECT_EQ(hy.branch(1).bytes(), recurrent);  // the same mamba2 shape
  std::vector<size_t> kv_bytes;
  for (int64_t T : {10, 40}) {
    model.forward_last(random_ids(B, T, 97, T), state);
    EXPECT_EQ(hy.length(), state.length());
    // Fixed states stay the same size; KV caches hold 2 KV heads of 8 per layer and token.
    EXPECT_EQ(state.layers[2]->bytes(), recurrent);
    EXPECT_EQ(hy.branch(1).bytes(), recurrent);
    EXPECT_EQ(hy.branch(0).bytes(), state.layers[0]->bytes());
    EXPECT_GE(state.layers[0]->bytes(), static_cast<size_t>(2 * B * state.length() * 2 * 8 * 4));
    EXPECT_EQ(hy.bytes(), hy.branch(0).bytes() + hy.branch(1).bytes());
    EXPECT_EQ(state.bytes(), state.layers[0]->bytes() + hy.bytes() + recurrent);
    kv_bytes.push_back(state.layers[0]->bytes());
  }
  EXPECT_GT(kv_bytes[1], kv_bytes[0]);
}

// Greedy continuation of the state's context by n tokens; returns the tokens and appends the
// logits of each step to `logits`.
std::vector<int32_t> greedy(LanguageModel& model, ModelState& state, int32_t first, int n, std::vector<float>& logits) {
  std::vector<int32_t> out;
  int32_t tok = first;
  for (int i = 0; i < n; ++i) {
    Tensor l = model.forward_last(Tensor::from_i32({1, 1}, {tok}), state);
    const int64_t V = l.numel();
    logits.insert(logits.end(), l.f32(), l.f32() + V);
    tok = static_cast<int32_t>(std::max_element(l.f32(), l.f32() + V) - l.f32());
    out.push_back(tok);
  }
  return out;
}

TEST(Hybrid, WholeModelSnapshotRestoreRegeneratesIdentically) {
  LanguageModel model(hybrid_config());
  model.init(21);
  ModelState state = model.make_state(1);
  std::vector<float> sink;
  std::vector<int32_t> first = greedy(model, state, 5, 12, sink);
  const int64_t len = state.length();
  const size_t bytes = state.bytes();
  ModelState snap = state.snapshot();
  EXPECT_EQ(snap.length(), len);
  std::vector<float> logits_a, logits_b;
  std::vector<int32_t> a = greedy(model, state, first.back(), 40, logits_a);
  EXPECT_EQ(state.length(), len + 40);
  EXPECT_GT(state.bytes(), bytes);  // the KV caches grew past their capacity at 12 tokens
  // Recurrent states cannot be truncated: only the snapshot brings them back.
  state.restore(snap);
  EXPECT_EQ(state.length(), len);
  std::vector<int32_t> b = greedy(model, state, first.back(), 40, logits_b);
  EXPECT_EQ(a, b);
  ASSERT_EQ(logits_a.size(), logits_b.size());
  for (size_t i = 0; i < logits_a.size(); ++i) ASSERT_EQ(logits_a[i], logits_b[i]) << i;
}

TEST(Hybrid, ParameterGradientsMatchFiniteDifferences) {
  LanguageModel model(hybrid_config());
  model.init(13);
  std::vector<std::string> names;
  for (const std::string& n : testing::expect_gradients_match_finite_differences(model, 7, 3, "layers.1.mixer."))
    names.push_back(n.substr(15));
  for (const char* want : {"branches.0.w_qkv", "branches.0.w_o", "norms.0.weight", "norms.1.weight", "w_out"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  EXPECT_GT(names.size(), 6u);  // mamba2's own weights under branches.1.
}

TEST(Hybrid, ConfigErrorsNameTheBranch) {
  nlohmann::json j = hybrid_json(kAttnBranch);
  j["mixers"]["hy"]["branches"][1]["heads"] = 0;
  auto r = ModelConfig::from_json(j);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().message(), "[config] mixers.hy.branches[1].heads = 0: must be in [1, 4096]");
  j = hybrid_json();
  j["mixers"]["hy"]["branches"] = nlohmann::json::array();
  r = ModelConfig::from_json(j);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().message(), "[config] mixers.hy.branches = []: must be a non-empty list of objects");
}

}  // namespace
}  // namespace speedlm
