// ModelConfig validation: unknown keys and bad values name the key path and value.
#include <gtest/gtest.h>

#include "models/config.h"
#include "tiny_model.h"
#include "train/train_config.h"

namespace speedlm {
namespace {

std::string error_of(nlohmann::json j) {
  auto r = ModelConfig::from_json(j);
  return r ? "" : r.status().message();
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
            "mamba2, mla, hymba)");
  j = testing::tiny_config_json();
  j.erase("vocab_size");
  EXPECT_EQ(error_of(j), "[config] vocab_size: required key is missing");
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
