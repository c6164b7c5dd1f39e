// Every example config in configs/ (one test case per file, named after it): it loads and
// validates as `speedlm train` loads it, trains 3 steps with the real train_step (finite loss,
// every parameter with a gradient moves), and its prefill logits equal step-by-step decode logits.
// Configs with d_model >= 256 run at half width (d_model and FFN widths, through the arena's
// --set code), keeping every layer pattern, mixer and FFN kind.
// The prefill == decode bound is 1e-5 RMS-rel per position (the model tests' bound), or 4x what
// moving every weight by one ulp does to that position's logits where that is larger: after
// training, gla.json's first-token logits sit on a cancellation (measured: prefill vs decode
// 1.2e-5 to 1.3e-5, one ulp of the weights 0.6e-5 to 0.9e-5), which no bug-free pair of f32
// forms can beat. A real mismatch (wrong state, position or cache) is orders of magnitude larger.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "arena/config_override.h"
#include "core/parallel.h"
#include "model_checks.h"
#include "models/config.h"
#include "models/lm.h"
#include "train/adamw.h"
#include "train/train_config.h"
#include "train/train_step.h"

namespace speedlm {
namespace {

namespace fs = std::filesystem;

const fs::path kConfigDir = fs::path(SPEEDLM_SOURCE_DIR) / "configs";

// The *.json files directly in configs/ (not configs/arena/), sorted, as file stems.
std::vector<std::string> example_configs() {
  std::vector<std::string> names;
  if (!fs::is_directory(kConfigDir)) return names;
  for (const auto& e : fs::directory_iterator(kConfigDir))
    if (e.is_regular_file() && e.path().extension() == ".json") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

// An empty or wrong folder would instantiate no cases and pass silently: this one fails instead.
TEST(ExampleConfigs, FolderHoldsTheIssueSevenConfigs) {
  const std::vector<std::string> names = example_configs();
  EXPECT_GE(names.size(), 15u) << kConfigDir;
  const std::set<std::string> have(names.begin(), names.end());
  for (const char* want : {"transformer", "linear_attention", "retnet", "gla", "mamba", "mamba2", "deltanet",
                           "gated_deltanet", "rwkv7", "mla", "sliding_window", "moe_mixtral", "jamba", "samba",
                           "qwen3_next", "minimax01", "hymba"})
    EXPECT_TRUE(have.count(want)) << want << ".json missing in " << kConfigDir;
}

// Decoding memory stored in bf16 or int8 rounds K/V (attention.h): logits RMS-rel <= 1e-2
// instead of 1e-5, the bound the transformer tests use for those caches.
bool has_quantized_kv_cache(const nlohmann::json& mixer) {
  if (mixer.contains("kv_cache") && mixer["kv_cache"].value("dtype", "f32") != "f32") return true;
  if (mixer.contains("branches"))
    for (const auto& b : mixer["branches"])
      if (has_quantized_kv_cache(b)) return true;
  return false;
}

// "d_model=192,ffn.hidden=512,..." for a config with d_model >= 256, else "". Mixer widths that
// the config states (heads, head_dim...) stay; those derived from d_model (Mamba's inner width,
// RWKV-7's head count) halve with it.
std::string half_width_overrides(const nlohmann::json& j) {
  const int64_t d = j.at("d_model").get<int64_t>();
  if (d < 256) return "";
  std::string s = "d_model=" + std::to_string(d / 2);
  auto ffn = [&](const std::string& path, const nlohmann::json& f) {
    for (const char* key : {"hidden", "shared_hidden"})
      if (f.contains(key)) s += "," + path + "." + key + "=" + std::to_string(f[key].get<int64_t>() / 2);
  };
  if (j.contains("ffn")) ffn("ffn", j["ffn"]);
  if (j.contains("ffns"))
    for (const auto& [name, f] : j["ffns"].items()) ffn("ffns." + name, f);
  return s;
}

// One thread: on the loaded 2-core machine the OpenMP barriers of 2 threads dominate these tiny
// batches (measured: 110 s for the executable at 2 threads, 7 s at 1). The threaded forms have
// their own tests under tests/ops.
class ExampleConfig : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { saved_threads_ = num_threads(), set_num_threads(1); }
  static void TearDownTestSuite() { set_num_threads(saved_threads_); }
  static inline int saved_threads_ = 0;
};

TEST_P(ExampleConfig, TrainsThreeStepsAndPrefillEqualsDecode) {
  const std::string path = (kConfigDir / (GetParam() + ".json")).string();
  // As `speedlm train` reads a config (train/trainer.cpp).
  auto j = read_json_file(path);
  ASSERT_TRUE(j.is_ok()) << j.status().message();
  auto full = ModelConfig::from_json(*j);
  ASSERT_TRUE(full.is_ok()) << full.status().message();
  auto tc = TrainConfig::from_json(j->contains("train") ? (*j)["train"] : nlohmann::json());
  ASSERT_TRUE(tc.is_ok()) << tc.status().message();
  nlohmann::json small = *j;
  ASSERT_TRUE(arena::apply_overrides(small, half_width_overrides(*j)).is_ok());
  auto mc = ModelConfig::from_json(small);
  ASSERT_TRUE(mc.is_ok()) << mc.status().message();
  LanguageModel model(*mc);
  model.init(tc->seed);

  // 3 steps on one tiny batch of random ids at the config's peak learning rate.
  const int64_t B = 2, T = 32, V = mc->vocab_size;
  data::Batch batch{testing::random_ids(B, T, V, 1), testing::random_ids(B, T, V, 2), B * T};
  std::vector<Tensor> before;
  for (const auto& p : model.params()) before.push_back(p.var->value().clone());
  AdamW adam(model.params(), AdamWParams{tc->beta1, tc->beta2, tc->eps, tc->weight_decay});
  for (int step = 0; step < 3; ++step) {
    StepResult r = train_step(model, adam, batch, tc->lr, tc->grad_clip);
    ASSERT_TRUE(std::isfinite(r.loss)) << "step " << step;
    ASSERT_TRUE(std::isfinite(r.grad_norm)) << "step " << step;
  }
  // Every parameter with a nonzero gradient moved. Others are not trained by gradient (the MoE
  // router bias has its own update rule) or have no effect by design (RWKV-7's v0 in layer 0
  // mixes v with itself).
  ag::backward(model.loss(batch.inputs, batch.targets));
  model.take_aux_loss();
  int64_t reached = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    const nn::NamedParam& p = model.params()[i];
    const Tensor& g = p.var->grad();
    if (!g.defined() || std::all_of(g.f32(), g.f32() + g.numel(), [](float x) { return x == 0.0f; })) continue;
    ++reached;
    const Tensor& now = p.var->value();
    EXPECT_FALSE(std::equal(now.f32(), now.f32() + now.numel(), before[i].f32())) << p.name << " did not change";
  }
  EXPECT_GE(reached, static_cast<int64_t>(before.size()) / 2);
  adam.zero_grad();

  bool quantized = false;
  for (const auto& [name, mixer] : mc->mixers) quantized = quantized || has_quantized_kv_cache(mixer);
  const double floor_tol = quantized ? 1e-2 : 1e-5;
  const std::vector<double> sens = testing::rounding_sensitivity(model, 2, 12);
  for (size_t i = 0; i < sens.size(); ++i) ASSERT_LT(sens[i], 1e-4) << "position " << i << " is too ill-conditioned to test";
  testing::expect_prefill_equals_decode_within(
      model, 2, 12, [&](int64_t b, int64_t t) { return std::max(floor_tol, 4.0 * sens[static_cast<size_t>(b * 12 + t)]); });
}

INSTANTIATE_TEST_SUITE_P(Configs, ExampleConfig, ::testing::ValuesIn(example_configs()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

}  // namespace
}  // namespace speedlm
