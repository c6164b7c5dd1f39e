// The arena's parts: budgets and their schedule, config overrides, speed/memory measurement,
// the report's grid.
#include <gtest/gtest.h>

#include "arena/budget.h"
#include "arena/config_override.h"
#include "arena/report.h"
#include "arena/speed.h"
#include "models/tiny_model.h"

namespace speedlm::arena {
namespace {

TEST(Budget, ParsesMinutesSecondsAndTokens) {
  EXPECT_DOUBLE_EQ(parse_budget("2").value().seconds, 120.0);
  EXPECT_DOUBLE_EQ(parse_budget("1.5m").value().seconds, 90.0);
  EXPECT_DOUBLE_EQ(parse_budget("2min").value().seconds, 120.0);
  EXPECT_DOUBLE_EQ(parse_budget("90s").value().seconds, 90.0);
  EXPECT_EQ(parse_budget("5000tok").value().tokens, 5000);
  EXPECT_EQ(parse_budget("300ktok").value().tokens, 300000);
  EXPECT_EQ(parse_budget("2Mtok").value().tokens, 2000000);
  for (const char* bad : {"", "ten", "-1", "0s", "5h", "3 m"}) EXPECT_FALSE(parse_budget(bad).is_ok()) << bad;
  Budget t = parse_budget("1000tok").value();
  EXPECT_DOUBLE_EQ(t.progress(123.0, 250), 0.25);
  Budget s = parse_budget("10s").value();
  EXPECT_DOUBLE_EQ(s.progress(5.0, 1 << 30), 0.5);
}

TEST(Budget, ScheduleWarmsUpThenDecaysToTheFloor) {
  const LrSchedule cos;  // cosine to 0.1
  EXPECT_LT(budget_lr(0.0, 1.0, cos), 0.05);
  EXPECT_NEAR(budget_lr(0.025, 1.0, cos), 0.5, 1e-12);
  EXPECT_NEAR(budget_lr(0.05, 1.0, cos), 1.0, 1e-12);
  EXPECT_NEAR(budget_lr(0.525, 1.0, cos), 0.55, 1e-12);
  EXPECT_NEAR(budget_lr(1.0, 1.0, cos), 0.1, 1e-12);
  EXPECT_NEAR(budget_lr(1.5, 1.0, cos), 0.1, 1e-12);
  const LrSchedule wsd{LrSchedule::Kind::kWsd, 0.0, 0.2};
  EXPECT_NEAR(budget_lr(0.025, 1.0, wsd), 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(budget_lr(0.8, 1.0, wsd), 1.0);
  EXPECT_NEAR(budget_lr(0.9, 1.0, wsd), 0.5, 1e-12);
  EXPECT_NEAR(budget_lr(1.0, 1.0, wsd), 0.0, 1e-12);
}

TEST(ConfigOverride, SetsExistingDottedPathsOnly) {
  nlohmann::json j = testing::tiny_config_json();
  ASSERT_TRUE(apply_overrides(j, "d_model=64,mixers.attn.heads=2,ffn.hidden=16,layers=[\"x\"],ffn.type=moe").is_ok());
  EXPECT_EQ(j["d_model"], 64);
  EXPECT_EQ(j["mixers"]["attn"]["heads"], 2);
  EXPECT_EQ(j["ffn"]["hidden"], 16);
  EXPECT_EQ(j["layers"], nlohmann::json::array({"x"}));
  EXPECT_EQ(j["ffn"]["type"], "moe");  // not JSON: kept as a string
  EXPECT_EQ(apply_overrides(j, "ffn.hiden=3").message(), "[config] --set ffn.hiden: the config has no key 'hiden'");
  EXPECT_FALSE(apply_overrides(j, "d_model").is_ok());
}

TEST(Speed, AttentionMemoryGrowsWithContextAndEveryFigureIsPositive) {
  LanguageModel model(testing::tiny_config());
  model.init(1);
  std::vector<ArenaSpeed> s = measure_speed(model, {64, 256}, 4, 1);
  ASSERT_EQ(s.size(), 2u);
  // 2 layers x (K and V) x 2 KV heads x 8 dims x 4 bytes per token; the caches double, so the
  // capacity is the context here (64 and 256 are powers of two above 16).
  EXPECT_EQ(s[0].state_bytes, static_cast<size_t>(64 * 2 * 2 * 2 * 8 * 4));
  EXPECT_EQ(s[1].state_bytes, 4 * s[0].state_bytes);
  for (const ArenaSpeed& x : s) {
    EXPECT_GT(x.prefill_tokens_per_s, 0.0);
    EXPECT_GT(x.decode_tokens_per_s, 0.0);
  }
}

TEST(Report, GridsPivotTheMetricBySequenceLength) {
  ArenaOptions opt;
  opt.task = "mqar";
  opt.seq_lens = {64, 128};
  opt.d_models = {32, 64};
  std::vector<ArenaRow> rows;
  for (int64_t T : {64, 128})
    for (int64_t d : {32, 64}) {
      ArenaRow r;
      r.name = "attn", r.seq_len = T, r.d_model = d, r.metric_name = "accuracy";
      r.metric = static_cast<double>(T + d) / 1000.0;
      rows.push_back(r);
    }
  std::string md = markdown_report(opt, rows, "notes\n");
  EXPECT_NE(md.find("| model | d_model | T=64 | T=128 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| attn | 32 | 0.096 | 0.160 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| attn | 64 | 0.128 | 0.192 |"), std::string::npos) << md;
  EXPECT_EQ(md.substr(md.size() - 6), "notes\n");
  // Configs of different widths without --seq-lens / --d-models are no grid.
  opt.seq_lens.clear(), opt.d_models.clear();
  EXPECT_EQ(markdown_report(opt, rows, "").find("grid"), std::string::npos);
}

}  // namespace
}  // namespace speedlm::arena
