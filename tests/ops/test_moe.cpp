// MoE op properties beyond the registry checks: moe_check messages, routing tables, padding,
// the bias choosing without weighing, the bf16 mode against f32.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <set>

#include "core/rng.h"
#include "ops/moe/moe.h"
#include "random_tensor.h"

namespace speedlm::ops {
namespace {

using testing::random_tensor;

double rms_rel(const Tensor& a, const Tensor& ref) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    num += (a.f32()[i] - ref.f32()[i]) * (a.f32()[i] - ref.f32()[i]), den += ref.f32()[i] * ref.f32()[i];
  return std::sqrt(num) / (std::sqrt(den) + 1e-30);
}

TEST(MoeCheck, RejectsBadParamsWithFieldAndValue) {
  MoeParams p;
  p.F = 8;
  EXPECT_TRUE(moe_check(p, 10, 16).is_ok());
  MoeParams q = p;
  q.k = 9;
  EXPECT_EQ(moe_check(q, 10, 16).message(), "[moe] top_k = 9: must be in [1, experts = 8]");
  q = p, q.groups = 3;
  EXPECT_EQ(moe_check(q, 10, 16).message(), "[moe] groups = 3: must divide experts = 8");
  q = p, q.groups = 4, q.topk_groups = 1, q.k = 3;
  EXPECT_EQ(moe_check(q, 10, 16).message(), "[moe] topk_groups = 1: 1 groups of 2 experts hold fewer than top_k = 3");
  q = p, q.capacity_factor = -0.5;
  EXPECT_EQ(moe_check(q, 10, 16).message(), "[moe] capacity_factor = -0.5: must be >= 0 (0: no capacity limit)");
  q = p, q.E = 300;
  EXPECT_EQ(moe_check(q, 10, 16).message(), "[moe] experts = 300: must be in [1, 256]");
}

TEST(MoePadding, AtMostASixteenthAndFewShapesPerOctave) {
  for (int64_t m = 0; m <= 16; ++m) EXPECT_EQ(moe_padded_rows(m), m);
  for (int64_t lo = 16; lo < (1 << 16); lo *= 2) {
    std::set<int64_t> shapes;
    for (int64_t m = lo + 1; m <= 2 * lo; ++m) {
      int64_t r = moe_padded_rows(m);
      ASSERT_GE(r, m);
      ASSERT_LE(16 * (r - m), m) << m;
      shapes.insert(r);
    }
    EXPECT_LE(shapes.size(), 16u) << "octave (" << lo << ", " << 2 * lo << "]";
  }
}

TEST(MoeRouting, GroupsSlotsByExpertAndDropsOverCapacityInTokenOrder) {
  MoeParams p;
  p.E = 4, p.k = 2, p.F = 4, p.capacity_factor = 0.75;
  const int64_t N = 40;
  Tensor logits = random_tensor({N, p.E}, 1.0, 3);
  for (int64_t n = 0; n < N; ++n) logits.f32()[n * p.E] += 3.0f;  // expert 0 overloaded
  MoeRouting r = moe_route(p, N, logits.f32(), nullptr);
  const int64_t cap = moe_capacity(p, N);
  EXPECT_EQ(cap, 15);
  int64_t dropped = 0;
  for (int64_t e = 0; e < p.E; ++e) {
    EXPECT_EQ(r.kept[e], std::min(r.routed[e], cap));
    dropped += r.routed[e] - r.kept[e];
  }
  EXPECT_EQ(r.dropped, dropped);
  EXPECT_GT(dropped, 0);
  std::vector<int64_t> last_row(p.E, -1);
  for (int64_t s = 0; s < N * p.k; ++s) {
    int32_t e = r.expert[s];
    if (r.row[s] < 0) {
      EXPECT_EQ(last_row[e] - r.offset[e] + 1, cap) << "a slot dropped before its expert was full";
      continue;
    }
    EXPECT_GE(r.row[s], r.offset[e]);
    EXPECT_LT(r.row[s], r.offset[e + 1]);
    EXPECT_GT(r.row[s], last_row[e]) << "rows follow token order";
    last_row[e] = r.row[s];
    EXPECT_EQ(r.slot[r.row[s]], s);
  }
}

TEST(MoeRouter, BiasChoosesButDoesNotWeigh) {
  MoeParams p;
  p.E = 4, p.k = 2, p.F = 4, p.score = RouterScore::Sigmoid;
  const float logits[4] = {-2.0f, 1.0f, 0.5f, 2.0f}, bias[4] = {5.0f, 0.0f, 0.0f, 0.0f};
  int32_t expert[2];
  float weight[2];
  moe_route_token<float>(p, logits, bias, expert, weight);
  EXPECT_EQ(expert[0], 0);  // chosen only through its bias
  EXPECT_EQ(expert[1], 3);
  auto sig = [](float l) { return 1.0f / (1.0f + std::exp(-l)); };
  EXPECT_NEAR(weight[0], sig(-2.0f) / (sig(-2.0f) + sig(2.0f)), 1e-6);
  EXPECT_NEAR(weight[1], sig(2.0f) / (sig(-2.0f) + sig(2.0f)), 1e-6);
}

TEST(MoeGrouped, Bf16ModeTracksF32WithinBf16Rounding) {
  MoeParams p;
  p.E = 8, p.k = 2, p.F = 48;
  const int64_t N = 300, D = 64;
  Tensor x = random_tensor({N, D}, 1.0, 1), logits = random_tensor({N, p.E}, 1.0, 2), dy = random_tensor({N, D}, 1.0, 5);
  Tensor w1 = random_tensor({p.E, 2 * p.F, D}, 0.125, 3), w2 = random_tensor({p.E, D, p.F}, 0.15, 4);
  Tensor w1h = w1.to(DType::BF16), w2h = w2.to(DType::BF16);
  Tensor y[2], dx[2], d1[2], d2[2], dl[2];
  for (int m = 0; m < 2; ++m) {
    MoeParams q = p;
    q.bf16 = m == 1;
    MoeExpertWeights w{w1.f32(), w2.f32(), w1h.bf16(), w2h.bf16()};
    MoeRouting r = moe_route(q, N, logits.f32(), nullptr);
    MoeSaved saved;
    y[m] = Tensor::empty({N, D}), dx[m] = Tensor::empty({N, D}), dl[m] = Tensor::empty({N, p.E});
    d1[m] = Tensor::zeros(w1.shape()), d2[m] = Tensor::zeros(w2.shape());
    Tensor dw = Tensor::empty({N * p.k});
    moe_grouped_fwd(q, r, D, x.f32(), w, y[m].f32(), &saved);
    moe_grouped_bwd(q, r, D, w, saved, dy.f32(), dx[m].f32(), dw.f32(), d1[m].f32(), d2[m].f32());
    moe_route_bwd(q, r, logits.f32(), dw.f32(), dl[m].f32());
  }
  // bf16 keeps 8 significant bits: ~2^-9 relative per operand.
  EXPECT_LE(rms_rel(y[1], y[0]), 1e-2);
  EXPECT_GT(rms_rel(y[1], y[0]), 0.0) << "the bf16 path did not run";
  EXPECT_LE(rms_rel(dx[1], dx[0]), 1e-2);
  EXPECT_LE(rms_rel(d1[1], d1[0]), 1e-2);
  EXPECT_LE(rms_rel(d2[1], d2[0]), 1e-2);
  EXPECT_LE(rms_rel(dl[1], dl[0]), 2e-2);
}

}  // namespace
}  // namespace speedlm::ops
