// Samplers: greedy, temperature, top-k, top-p, repetition penalty, seeds.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "runtime/sampler.h"

namespace speedlm {
namespace {

std::vector<float> logits_of(std::vector<double> probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

std::map<int32_t, int> histogram(const SamplerParams& p, const std::vector<float>& logits, int draws,
                                 const std::vector<int32_t>& history = {}) {
  Sampler s(p);
  std::map<int32_t, int> h;
  for (int i = 0; i < draws; ++i) {
    std::vector<float> l = logits;
    ++h[s.sample(l.data(), static_cast<int64_t>(l.size()), history)];
  }
  return h;
}

TEST(Sampler, GreedyTakesTheArgmaxAndTheLowestIdOnTies) {
  SamplerParams p;
  p.temperature = 0.0;
  std::vector<float> l = {0.1f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(Sampler(p).sample(l.data(), 4, {}), 1);
}

TEST(Sampler, TemperatureOneWithoutCutsFollowsTheDistribution) {
  SamplerParams p;
  p.temperature = 1.0, p.top_k = 0, p.top_p = 1.0, p.seed = 3;
  auto h = histogram(p, logits_of({0.5, 0.3, 0.2}), 20000);
  EXPECT_NEAR(h[0] / 20000.0, 0.5, 0.015);
  EXPECT_NEAR(h[1] / 20000.0, 0.3, 0.015);
  EXPECT_NEAR(h[2] / 20000.0, 0.2, 0.015);
}

TEST(Sampler, TopKAndTopPRestrictTheSupport) {
  SamplerParams p;
  p.temperature = 1.0, p.top_k = 2, p.top_p = 1.0;
  auto h = histogram(p, logits_of({0.4, 0.3, 0.2, 0.1}), 3000);
  EXPECT_EQ(h.count(2) + h.count(3), 0u);
  EXPECT_NEAR(h[0] / 3000.0, 0.4 / 0.7, 0.03);
  p.top_k = 0, p.top_p = 0.65;  // 0.4 + 0.3 >= 0.65: keeps two tokens
  h = histogram(p, logits_of({0.4, 0.3, 0.2, 0.1}), 3000);
  EXPECT_EQ(h.size(), 2u);
  p.top_p = 0.3;  // the first token alone reaches it
  h = histogram(p, logits_of({0.4, 0.3, 0.2, 0.1}), 500);
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0], 500);
}

TEST(Sampler, LowTemperatureSharpens) {
  SamplerParams p;
  p.temperature = 0.1, p.top_k = 0, p.top_p = 1.0;
  auto h = histogram(p, logits_of({0.4, 0.35, 0.25}), 2000);
  EXPECT_GT(h[0], 1500);  // (0.4/0.35)^10 = 3.8: token 0 takes ~78%
}

TEST(Sampler, RepetitionPenaltyDemotesSeenTokens) {
  SamplerParams p;
  p.temperature = 0.0, p.repetition_penalty = 2.0;
  std::vector<float> l = {3.0f, 2.0f, -1.0f};
  EXPECT_EQ(Sampler(p).sample(l.data(), 3, {0}), 1);  // 3 / 2 = 1.5 < 2
  EXPECT_FLOAT_EQ(l[0], 1.5f);
  std::vector<float> neg = {-1.0f, -1.5f};
  EXPECT_EQ(Sampler(p).sample(neg.data(), 2, {0}), 1);  // -1 * 2 = -2 < -1.5
}

TEST(Sampler, SameSeedSameTokensOtherSeedOtherTokens) {
  SamplerParams p;
  p.temperature = 1.0, p.top_k = 0, p.top_p = 1.0, p.seed = 11;
  std::vector<float> l = logits_of({0.25, 0.25, 0.25, 0.25});
  auto draw = [&](uint64_t seed) {
    SamplerParams q = p;
    q.seed = seed;
    Sampler s(q);
    std::vector<int32_t> out;
    for (int i = 0; i < 32; ++i) {
      std::vector<float> c = l;
      out.push_back(s.sample(c.data(), 4, {}));
    }
    return out;
  };
  EXPECT_EQ(draw(11), draw(11));
  EXPECT_NE(draw(11), draw(12));
}

TEST(Sampler, ValidationNamesTheField) {
  SamplerParams p;
  p.top_p = 0.0;
  EXPECT_EQ(validate_sampler(p).message(), "[sampler] top_p = 0: must be in (0, 1]");
  p = SamplerParams();
  p.repetition_penalty = 0.5;
  EXPECT_EQ(validate_sampler(p).message(), "[sampler] repetition_penalty = 0.5: must be in [1, 10]");
  EXPECT_TRUE(validate_sampler(SamplerParams()).is_ok());
}

}  // namespace
}  // namespace speedlm
