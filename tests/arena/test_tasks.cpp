// The arena's task generators: MQAR's layout (Zoology), selective copying and induction
// heads (Mamba paper), determinism, and the accuracy metric.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "arena/tasks/copy_task.h"
#include "arena/tasks/induction.h"
#include "arena/tasks/mqar.h"

namespace speedlm::arena {
namespace {

TEST(Mqar, QueriesSitAtEvenOffsetsAfterTheContextAndTargetThePairedValue) {
  for (auto [T, N] : {std::pair<int64_t, int64_t>{64, 4}, {128, 8}, {256, 16}, {64, 16}}) {
    MqarParams p{512, T, N};
    MqarTask task(p, 8, 3);
    data::Batch b = task.at(5);
    ASSERT_EQ(b.inputs.dim(0), 8);
    ASSERT_EQ(b.inputs.dim(1), T);
    EXPECT_EQ(b.num_targets, 8 * N);
    for (int64_t r = 0; r < 8; ++r) {
      const int32_t* x = b.inputs.i32() + r * T;
      const int32_t* y = b.targets.i32() + r * T;
      std::map<int32_t, int32_t> value_of;
      for (int64_t i = 0; i < N; ++i) {
        EXPECT_GE(x[2 * i], 1);
        EXPECT_LT(x[2 * i], 256);
        EXPECT_GE(x[2 * i + 1], 256);
        EXPECT_LT(x[2 * i + 1], 512);
        EXPECT_TRUE(value_of.emplace(x[2 * i], x[2 * i + 1]).second) << "key reused in row " << r;
        EXPECT_EQ(y[2 * i], kIgnore);
        EXPECT_EQ(y[2 * i + 1], kIgnore);
      }
      std::set<int32_t> values, queried;
      for (auto [k, v] : value_of) values.insert(v);
      EXPECT_EQ(values.size(), static_cast<size_t>(N)) << "value reused in row " << r;
      for (int64_t t = 2 * N; t < T; ++t) {
        if (y[t] == kIgnore) {
          EXPECT_EQ(x[t], 0) << "a non-query position holds a token (random_non_queries is off)";
          continue;
        }
        EXPECT_EQ((t - 2 * N) % 2, 0) << "query at an odd offset " << t;
        ASSERT_TRUE(value_of.count(x[t])) << "query " << x[t] << " is not a key of row " << r;
        EXPECT_EQ(y[t], value_of[x[t]]);
        EXPECT_TRUE(queried.insert(x[t]).second) << "key queried twice";
      }
      EXPECT_EQ(queried.size(), static_cast<size_t>(N));
    }
  }
}

TEST(Mqar, GapsFollowThePowerLaw) {
  // p(gap) ~ (gap + 1)^(-0.99): with T = 256, N = 4 (space 124) about a fifth of queries sit
  // at gap 0, while a uniform draw would put 1/124 there and have mean gap 61.5.
  MqarTask task(MqarParams{1024, 256, 4}, 64, 9);
  int64_t at_zero = 0, total = 0;
  double gap_sum = 0.0;
  for (uint64_t s = 0; s < 20; ++s) {
    data::Batch b = task.at(s);
    for (int64_t i = 0; i < b.targets.numel(); ++i) {
      if (b.targets.i32()[i] == kIgnore) continue;
      int64_t gap = (i % 256 - 8) / 2;
      at_zero += gap == 0, gap_sum += static_cast<double>(gap), ++total;
    }
  }
  EXPECT_GT(static_cast<double>(at_zero) / total, 0.12);
  EXPECT_LT(gap_sum / total, 40.0);
}

TEST(Mqar, RandomNonQueriesFillsTheZeros) {
  MqarTask task(MqarParams{512, 64, 4, 0.01, true}, 4, 1);
  data::Batch b = task.at(0);
  int64_t zeros = 0;
  for (int64_t i = 0; i < b.inputs.numel(); ++i) zeros += b.inputs.i32()[i] == 0;
  EXPECT_LT(zeros, 4);  // a uniform token is 0 with probability 1/512
}

TEST(Mqar, BatchesArePureFunctionsOfSeedAndStep) {
  MqarTask a(MqarParams{512, 64, 4}, 4, 7), b(MqarParams{512, 64, 4}, 4, 7), c(MqarParams{512, 64, 4}, 4, 8);
  data::Batch a3 = a.at(3), b3 = b.at(3), a4 = a.at(4), c3 = c.at(3);
  int64_t diff4 = 0, diffc = 0;
  for (int64_t i = 0; i < a3.inputs.numel(); ++i) {
    ASSERT_EQ(a3.inputs.i32()[i], b3.inputs.i32()[i]);
    diff4 += a3.inputs.i32()[i] != a4.inputs.i32()[i];
    diffc += a3.inputs.i32()[i] != c3.inputs.i32()[i];
  }
  EXPECT_GT(diff4, 0);
  EXPECT_GT(diffc, 0);
  // The test set is fixed and disjoint from the training streams.
  auto t1 = a.test_set(100), t2 = b.test_set(100);
  ASSERT_EQ(t1.size(), 7u);
  EXPECT_EQ(t1[6].inputs.dim(0), 4);
  for (int64_t i = 0; i < t1[0].inputs.numel(); ++i) ASSERT_EQ(t1[0].inputs.i32()[i], t2[0].inputs.i32()[i]);
  // The validation set (early stopping) is fixed too, and is not the test set.
  auto v1 = a.validation_set(16), v2 = b.validation_set(16);
  ASSERT_EQ(v1.size(), 1u);
  int64_t diffv = 0;
  for (int64_t i = 0; i < v1[0].inputs.numel(); ++i) {
    ASSERT_EQ(v1[0].inputs.i32()[i], v2[0].inputs.i32()[i]);
    diffv += v1[0].inputs.i32()[i] != t1[0].inputs.i32()[i];
  }
  EXPECT_GT(diffv, 0);
}

TEST(Mqar, PreconditionsAreChecked) {
  EXPECT_FALSE(MqarParams({512, 63, 4}).check().is_ok());
  EXPECT_FALSE(MqarParams({64, 64, 4}).check().is_ok());
  EXPECT_FALSE(MqarParams({512, 64, 17}).check().is_ok());
  EXPECT_TRUE(MqarParams({512, 64, 16}).check().is_ok());
  EXPECT_NE(MqarParams({64, 64, 4}).check().message().find("vocab_size = 64"), std::string::npos);
}

TEST(SelectiveCopy, MarkersTargetTheDataTokensInOrder) {
  const int64_t T = 80, M = 8, A = 16;
  CopyTask task(CopyParams{A, T, M}, 16, 2);
  data::Batch b = task.at(0);
  EXPECT_EQ(b.num_targets, 16 * M);
  std::set<int64_t> first_positions;
  for (int64_t r = 0; r < 16; ++r) {
    const int32_t* x = b.inputs.i32() + r * T;
    const int32_t* y = b.targets.i32() + r * T;
    std::vector<int32_t> data;
    for (int64_t t = 0; t < T - M; ++t) {
      EXPECT_EQ(y[t], kIgnore);
      EXPECT_NE(x[t], A - 1) << "marker among the data";
      if (x[t] != 0) {
        EXPECT_LE(x[t], A - 2);
        if (data.empty()) first_positions.insert(t);
        data.push_back(x[t]);
      }
    }
    ASSERT_EQ(data.size(), static_cast<size_t>(M));
    for (int64_t j = 0; j < M; ++j) {
      EXPECT_EQ(x[T - M + j], A - 1);
      EXPECT_EQ(y[T - M + j], data[j]);
    }
  }
  EXPECT_GT(first_positions.size(), 4u) << "data positions are not scattered";
}

TEST(InductionHeads, TheLastPrefixTargetsTheTokenAfterTheFirst) {
  const int64_t T = 64, V = 16;
  InductionTask task(InductionParams{V, T}, 32, 4);
  data::Batch b = task.at(1);
  EXPECT_EQ(b.num_targets, 32);
  for (int64_t r = 0; r < 32; ++r) {
    const int32_t* x = b.inputs.i32() + r * T;
    const int32_t* y = b.targets.i32() + r * T;
    std::vector<int64_t> prefixes;
    for (int64_t t = 0; t < T; ++t) {
      if (x[t] == V - 1) prefixes.push_back(t);
      if (t < T - 1) {
        EXPECT_EQ(y[t], kIgnore);
      }
    }
    ASSERT_EQ(prefixes.size(), 2u) << "row " << r;
    EXPECT_EQ(prefixes[1], T - 1);
    EXPECT_LE(prefixes[0], T - 3);
    EXPECT_EQ(y[T - 1], x[prefixes[0] + 1]);
    EXPECT_LT(y[T - 1], V - 1);
  }
}

TEST(Accuracy, IsThePerExampleMeanOverScoredPositions) {
  // Two examples, V = 3: row 0 scores positions 0 and 2 (one right), row 1 position 1 (right).
  data::Batch b{Tensor::zeros({2, 3}, DType::I32), Tensor::from_i32({2, 3}, {1, kIgnore, 2, kIgnore, 0, kIgnore}), 3};
  std::vector<float> logits = {0, 5, 1,  9, 9, 9,  3, 0, 1,   // row 0: argmax 1 (right), -, 0 (wrong)
                               0, 0, 0,  4, 1, 2,  0, 0, 0};  // row 1: -, argmax 0 (right), -
  AccuracySum acc;
  add_accuracy(logits.data(), 3, b, acc);
  EXPECT_EQ(acc.examples, 2);
  EXPECT_DOUBLE_EQ(acc.mean(), (0.5 + 1.0) / 2);
}

}  // namespace
}  // namespace speedlm::arena
