// ModelConfig validation: unknown keys and bad values name the key path and value.
#include <gtest/gtest.h>

#include "models/config.h"
#include "nn/mixers/attention.h"
#include "tiny_model.h"
#include "train/train_config.h"

namespace speedlm {
namespace {

std::string error_of(nlohmann::json j) {
  auto r = ModelConfig::from_json(j);
  return r ? "" : r.status().message();
}

// The error of the tiny config (d_model 32) with its mixer replaced by `mixer` (JSON); "" if none.
std::string with_mixer(const char* mixer) {
  auto j = testing::tiny_config_json();
  j["mixers"]["attn"] = nlohmann::json::parse(mixer);
  return error_of(j);
}

TEST(ModelConfig, AcceptsTheTinyConfigAndRoundTrips) {
  auto c = ModelConfig::from_json(testing::tiny_config_json());
  ASSERT_TRUE(c) << c.status().message();
  auto again = ModelConfig::from_json(c->to_json());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->to_json(), c->to_json());
}

TEST(ModelConfig, UnknownKeysNameTheirPath) {
  auto j = testing::tiny_config_json();
  j["d_modle"] = 3;
  EXPECT_EQ(error_of(j), "[config] d_modle: unknown key");
  j = testing::tiny_config_json();
  j["ffn"]["hiden"] = 3;
  EXPECT_EQ(error_of(j), "[config] ffn.hiden: unknown key");
  j = testing::tiny_config_json();
  j["mixers"]["attn"]["head"] = 3;
  EXPECT_EQ(error_of(j), "[config] mixers.attn.head: unknown key");
}

TEST(ModelConfig, BadValuesNameKeyAndValue) {
  auto j = testing::tiny_config_json();
  j["mixers"]["attn"]["heads"] = 0;
  EXPECT_EQ(error_of(j), "[config] mixers.attn.heads = 0: must be in [1, 4096]");
  j = testing::tiny_config_json();
  j["mixers"]["attn"]["kv_heads"] = 3;
  EXPECT_EQ(error_of(j), "[config] mixers.attn.kv_heads = 3: heads (4) must be a multiple of it");
  j = testing::tiny_config_json();
  j["mixers"]["attn"]["window"] = -1;
  EXPECT_EQ(error_of(j), "[config] mixers.attn.window = -1: must be in [0, 1073741824]");
  j = testing::tiny_config_json();
  j["mixers"]["attn"]["softcap"] = -5.0;
  EXPECT_EQ(error_of(j), "[config] mixers.attn.softcap = -5.0: must be in [0, 1000000]");
  j = testing::tiny_config_json();
  j["mixers"]["attn"]["sinks"] = 1;
  EXPECT_EQ(error_of(j), "[config] mixers.attn.sinks = 1: must be true or false");
  j = testing::tiny_config_json();
  j["d_model"] = "big";
  EXPECT_EQ(error_of(j), "[config] d_model = \"big\": must be an integer");
  j = testing::tiny_config_json();
  j["layers"] = {"attn", "mamba"};
  EXPECT_EQ(error_of(j), "[config] layers[1] = \"mamba\": no such entry in mixers");
  j = testing::tiny_config_json();
  j["mixers"]["attn"]["type"] = "conv";
  EXPECT_EQ(error_of(j),
            "[config] mixers.attn.type = \"conv\": unknown mixer type (known: attention, linear_attention, retnet, gla, "
            "mamba2, mla, deltanet, gated_deltanet, mamba, rwkv7, hymba)");
  j = testing::tiny_config_json();
  j.erase("vocab_size");
  EXPECT_EQ(error_of(j), "[config] vocab_size: required key is missing");
}

TEST(ModelConfig, KvCacheAndStreamingKeysNameTheirPath) {
  auto j = testing::tiny_config_json();
  j["mixers"]["attn"]["kv_cache"] = {{"dtype", "fp8"}};
  EXPECT_EQ(error_of(j), "[config] mixers.attn.kv_cache.dtype = \"fp8\": must be one of f32, bf16, int8");
  j["mixers"]["attn"]["kv_cache"] = {{"page_size", 0}};
  EXPECT_EQ(error_of(j), "[config] mixers.attn.kv_cache.page_size = 0: must be in [1, 4096]");
  j["mixers"]["attn"]["kv_cache"] = {{"pages", 4}};
  EXPECT_EQ(error_of(j), "[config] mixers.attn.kv_cache.pages: unknown key");
  j = testing::tiny_config_json();
  j["mixers"]["attn"]["streaming"] = {{"sink_tokens", 4}};
  EXPECT_EQ(error_of(j), "[config] mixers.attn.streaming.window: required key is missing");
  j["mixers"]["attn"]["streaming"] = {{"sink_tokens", 4}, {"window", 0}};
  EXPECT_EQ(error_of(j), "[config] mixers.attn.streaming.window = 0: must be in [1, 1073741824]");
  j["mixers"]["attn"]["streaming"] = {{"sink_tokens", 4}, {"window", 8}};
  j["mixers"]["attn"]["window"] = 16;
  EXPECT_EQ(error_of(j), "[config] mixers.attn.streaming: with window = 16: a streaming cache has its own window");
}

TEST(ModelConfig, DeltaRuleAndSsmMixerErrorsNamePathAndValue) {
  EXPECT_EQ(with_mixer(R"({"type": "gated_deltanet", "heads": 4, "chunk": 500})"),
            "[config] mixers.attn.chunk = 500: must be in [1, 128]");
  EXPECT_EQ(with_mixer(R"({"type": "deltanet", "heads": 4, "dt_min": 0.01})"), "[config] mixers.attn.dt_min: unknown key");
  EXPECT_EQ(with_mixer(R"({"type": "mamba", "expand": 0})"), "[config] mixers.attn.expand = 0: must be in [1, 16]");
  EXPECT_EQ(with_mixer(R"({"type": "rwkv7", "head_dim": 12})"),
            "[config] mixers.attn.head_dim = 12: must divide d_model (32)");
  EXPECT_EQ(with_mixer(R"({"type": "gated_deltanet", "heads": 4, "head_dim": 8})"), "");
}

TEST(ModelConfig, AttentionHeadsFromHeadDim) {
  EXPECT_EQ(with_mixer(R"({"type": "attention", "head_dim": 8})"), "");
  nn::AttentionMixerParams p =
      nn::AttentionMixerParams::parse(nlohmann::json::parse(R"({"type": "attention", "head_dim": 8})"), "m", 32).value();
  EXPECT_EQ(p.heads, 4);
  EXPECT_EQ(p.kv_heads, 4);
  EXPECT_EQ(p.head_dim, 8);
  EXPECT_EQ(with_mixer(R"({"type": "attention", "head_dim": 12})"),
            "[config] mixers.attn.head_dim = 12: must divide d_model (32)");
  EXPECT_EQ(with_mixer(R"({"type": "attention", "heads": 3})"),
            "[config] mixers.attn.head_dim: required when heads (3) does not divide d_model (32)");
  EXPECT_EQ(with_mixer(R"({"type": "attention"})"), "[config] mixers.attn.heads: required key is missing (or give head_dim)");
}

TEST(ModelConfig, ShortConvErrorsNamePathAndValue) {
  EXPECT_EQ(with_mixer(R"({"type": "linear_attention", "heads": 4, "conv": 1})"),
            "[config] mixers.attn.conv = 1: must be in [2, 8]");
  EXPECT_EQ(with_mixer(R"({"type": "retnet", "heads": 4, "conv": 9})"), "[config] mixers.attn.conv = 9: must be in [2, 8]");
  EXPECT_EQ(with_mixer(R"({"type": "gla", "heads": 2, "conv": "4"})"),
            "[config] mixers.attn.conv = \"4\": must be an integer");
  EXPECT_EQ(with_mixer(R"({"type": "gla", "heads": 2, "conv": 4})"), "");
}

TEST(ModelConfig, FfnErrorsNamePathAndValue) {
  auto with_ffn = [](const char* ffn) {
    auto j = testing::tiny_config_json();
    j["ffn"] = nlohmann::json::parse(ffn);
    return error_of(j);
  };
  EXPECT_EQ(with_ffn(R"({"type": "rwkv_cmix", "hidden": 0})"), "[config] ffn.hidden = 0: must be in [1, 1048576]");
  EXPECT_EQ(with_ffn(R"({"type": "rwkv_cmix", "hidden": "wide"})"), "[config] ffn.hidden = \"wide\": must be an integer");
  EXPECT_EQ(with_ffn(R"({"type": "rwkv_cmix"})"), "[config] ffn.hidden: required key is missing");
  EXPECT_EQ(with_ffn(R"({"type": "rwkv_cmix", "hidden": 64, "experts": 2})"), "[config] ffn.experts: unknown key");
  EXPECT_EQ(with_ffn(R"({"type": "cmix", "hidden": 64})"),
            "[config] ffn.type = \"cmix\": must be one of swiglu, moe, rwkv_cmix");
  auto ok = ModelConfig::from_json([] {
    auto j = testing::tiny_config_json();
    j["ffn"] = {{"type", "rwkv_cmix"}, {"hidden", 64}};
    return j;
  }());
  ASSERT_TRUE(ok) << ok.status().message();
  EXPECT_EQ(ok->ffn.type, "rwkv_cmix");
  EXPECT_EQ(ok->ffn.hidden, 64);
  EXPECT_EQ(ModelConfig::from_json(ok->to_json())->to_json(), ok->to_json());
}

TEST(TrainConfig, ValidatesTheTrainSection) {
  auto r = TrainConfig::from_json(nlohmann::json::parse(R"({"lr": -1})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().message(), "[config] train.lr = -1: must be in [0, 10]");
  r = TrainConfig::from_json(nlohmann::json::parse(R"({"batch": 4})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().message(), "[config] train.batch: unknown key");
}

}  // namespace
}  // namespace speedlm
