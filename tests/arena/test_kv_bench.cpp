// `speedlm bench kv` reports each attention layer's own cache: bytes per token of its kv_cache
// dtype (or the --kv-dtype override), and a window / streaming cache as constant bytes at long
// context; RWKV's channel mix adds its constant last-token state.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "speedlm/speedlm.h"

namespace speedlm {
namespace {

const std::string kConfigs = std::string(SPEEDLM_SOURCE_DIR) + "/configs/";

TEST(KvBench, GrowingCacheBytesPerTokenFollowTheDtype) {
  // transformer.json: KVH 2, Dh 64: K and V of a token are 2 * 2 * 64 elements.
  auto f32 = bench_kv(kConfigs + "transformer.json", 1024, "").value();
  auto i8 = bench_kv(kConfigs + "transformer.json", 1024, "int8").value();
  EXPECT_EQ(f32[0].memory, "kv f32");
  EXPECT_EQ(f32[0].bytes_per_token, 2u * 2 * 64 * 4);
  EXPECT_EQ(f32[0].bytes_at_context, 1024u * 2 * 2 * 64 * 4);
  EXPECT_EQ(i8[0].memory, "kv int8");
  EXPECT_EQ(i8[0].bytes_per_token, 2u * 2 * 64 + 2 * 2 * 4);  // + one f32 scale per kv head, K and V
}

TEST(KvBench, WindowAndStreamingCachesAreConstantAtLongContext) {
  // sliding_window.json: window 64, int8 pages of 16 tokens, KVH 2, Dh 32.
  auto a = bench_kv(kConfigs + "sliding_window.json", 32768, "").value();
  auto b = bench_kv(kConfigs + "sliding_window.json", 1 << 20, "").value();
  EXPECT_EQ(a[0].memory, "window_kv int8");
  EXPECT_EQ(a[0].bytes_per_token, 0u);
  EXPECT_EQ(a[0].bytes_at_context, b[0].bytes_at_context);
  EXPECT_EQ(a[0].bytes_at_context, 64u * (2 * 2 * 32 + 2 * 2 * 4));  // 64 tokens, page aligned
  nlohmann::json j;
  std::ifstream(kConfigs + "transformer.json") >> j;
  j["mixers"]["attn"]["streaming"] = {{"sink_tokens", 4}, {"window", 60}};
  const std::string path = ::testing::TempDir() + "streaming_kv_bench.json";
  std::ofstream(path) << j.dump();
  auto s = bench_kv(path, 1 << 20, "bf16").value();
  EXPECT_EQ(s[0].memory, "window_kv bf16");
  // Sinks: page 0; the last 60 tokens: 4 pages of 16 at 2^20 (page aligned); 5 pages in all.
  EXPECT_EQ(s[0].bytes_at_context, 5u * 16 * 2 * 2 * 64 * 2);
}

TEST(KvBench, ChannelMixStateAddsConstantBytes) {
  // rwkv7.json: D 384, 6 heads of 64; the time mix keeps the WKV state and its last token, the
  // channel mix (ffn rwkv_cmix) another last token.
  auto a = bench_kv(kConfigs + "rwkv7.json", 1024, "").value();
  auto b = bench_kv(kConfigs + "rwkv7.json", 1 << 20, "").value();
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0].memory, "recurrent + ffn");
  EXPECT_EQ(a[0].bytes_per_token, 0u);
  EXPECT_EQ(a[0].fixed_bytes, (6u * 64 * 64 + 384 + 384) * 4);
  EXPECT_EQ(a[0].bytes_at_context, a[0].fixed_bytes);
  EXPECT_EQ(b[0].bytes_at_context, a[0].fixed_bytes);
}

TEST(KvBench, SetEditsTheConfigFirst) {
  // mqar_deltanet.json: 4 heads, K = V = d_model / 4, a width-4 conv keeping 3 tokens of q, k, v.
  const std::string path = kConfigs + "arena/mqar_deltanet.json";
  auto d64 = bench_kv(path, 256, "").value();
  auto d128 = bench_kv(path, 256, "", "d_model=128,n_layers=3").value();
  EXPECT_EQ(d64.size(), 2u);
  EXPECT_EQ(d64[0].fixed_bytes, (4u * 16 * 16 + 3 * 3 * 64) * 4);
  ASSERT_EQ(d128.size(), 3u);
  EXPECT_EQ(d128[0].fixed_bytes, (4u * 32 * 32 + 3 * 3 * 128) * 4);
  auto bad = bench_kv(path, 256, "", "d_modl=128");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().message(), "[config] --set d_modl: the config has no key 'd_modl'");
}

}  // namespace
}  // namespace speedlm
