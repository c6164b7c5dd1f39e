// The <op>_check functions: valid inputs pass, each bad field is rejected with a message
// that starts with [op_name] and names the field and its value.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ops/activation/swiglu/swiglu.h"
#include "ops/loss/cross_entropy/cross_entropy.h"
#include "ops/nn/embedding/embedding.h"
#include "ops/norm/rmsnorm/rmsnorm.h"
#include "ops/pos/rope/rope.h"

namespace speedlm::ops {
namespace {

void expect_error(const Status& s, const std::string& message) {
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.message(), message);
}

TEST(EmbeddingCheck, AcceptsValidInputs) {
  EXPECT_TRUE(embedding_check(Tensor::from_i32({3}, {0, 63, 5}), Tensor::zeros({64, 8})).is_ok());
  EXPECT_TRUE(embedding_check(Tensor::zeros({0}, DType::I32), Tensor::zeros({64, 8})).is_ok());
}

TEST(EmbeddingCheck, RejectsBadInputs) {
  Tensor w = Tensor::zeros({64, 8});
  expect_error(embedding_check(Tensor::zeros({3}), w), "[embedding] ids.dtype = f32: must be i32");
  expect_error(embedding_check(Tensor::zeros({2, 3}, DType::I32), w), "[embedding] ids.shape = [2, 3]: must be [N]");
  expect_error(embedding_check(Tensor::from_i32({3}, {0, 1, 2}), Tensor::zeros({64, 8}, DType::I32)),
               "[embedding] weight.dtype = i32: must be f32");
  expect_error(embedding_check(Tensor::from_i32({1}, {0}), Tensor::zeros({64})),
               "[embedding] weight.shape = [64]: must be [V, D] with V, D >= 1");
  expect_error(embedding_check(Tensor::from_i32({1}, {0}), Tensor::zeros({0, 8})),
               "[embedding] weight.shape = [0, 8]: must be [V, D] with V, D >= 1");
  expect_error(embedding_check(Tensor::from_i32({3}, {0, 1, 64}), w), "[embedding] ids[2] = 64: must be in [0, 64) (V)");
  expect_error(embedding_check(Tensor::from_i32({2}, {-1, 1}), w), "[embedding] ids[0] = -1: must be in [0, 64) (V)");
}

TEST(RopeCheck, AcceptsValidParams) {
  EXPECT_TRUE(rope_check(RopeParams{}, 2).is_ok());
  EXPECT_TRUE(rope_check(RopeParams{5e5f}, 128).is_ok());
}

TEST(RopeCheck, RejectsBadParams) {
  expect_error(rope_check(RopeParams{}, 7), "[rope] head_dim = 7: must be even");
  expect_error(rope_check(RopeParams{}, 0), "[rope] head_dim = 0: must be >= 2");
  expect_error(rope_check(RopeParams{}, -4), "[rope] head_dim = -4: must be >= 2");
  expect_error(rope_check(RopeParams{0.0f}, 64), "[rope] theta = 0: must be finite and > 0");
  expect_error(rope_check(RopeParams{-1.0f}, 64), "[rope] theta = -1: must be finite and > 0");
  expect_error(rope_check(RopeParams{std::numeric_limits<float>::infinity()}, 64),
               "[rope] theta = inf: must be finite and > 0");
  EXPECT_FALSE(rope_check(RopeParams{std::nanf("")}, 64).is_ok());
}

TEST(CrossEntropyCheck, AcceptsValidInputs) {
  CrossEntropyParams p;
  EXPECT_TRUE(cross_entropy_check(p, Tensor::zeros({3, 10}), Tensor::from_i32({3}, {0, 9, -100})).is_ok());
  p.ignore_index = 10;
  EXPECT_TRUE(cross_entropy_check(p, Tensor::zeros({2, 10}), Tensor::from_i32({2}, {10, 3})).is_ok());
}

TEST(CrossEntropyCheck, RejectsBadInputs) {
  CrossEntropyParams p;
  Tensor logits = Tensor::zeros({3, 10});
  Tensor targets = Tensor::from_i32({3}, {0, 1, 2});
  expect_error(cross_entropy_check(p, Tensor::zeros({3, 10}, DType::I32), targets),
               "[cross_entropy] logits.dtype = i32: must be f32");
  expect_error(cross_entropy_check(p, Tensor::zeros({30}), targets),
               "[cross_entropy] logits.shape = [30]: must be [N, V] with V >= 1");
  expect_error(cross_entropy_check(p, Tensor::zeros({3, 0}), targets),
               "[cross_entropy] logits.shape = [3, 0]: must be [N, V] with V >= 1");
  expect_error(cross_entropy_check(p, logits, Tensor::zeros({3})), "[cross_entropy] targets.dtype = f32: must be i32");
  expect_error(cross_entropy_check(p, logits, Tensor::from_i32({2}, {0, 1})),
               "[cross_entropy] targets.shape = [2]: must be [3] (N of logits)");
  expect_error(cross_entropy_check(p, logits, Tensor::from_i32({3}, {0, 10, 2})),
               "[cross_entropy] targets[1] = 10: must be in [0, 10) (V) or ignore_index = -100");
  expect_error(cross_entropy_check(p, logits, Tensor::from_i32({3}, {0, 1, -1})),
               "[cross_entropy] targets[2] = -1: must be in [0, 10) (V) or ignore_index = -100");
}

TEST(RmsNormCheck, AcceptsValidInputs) {
  EXPECT_TRUE(rmsnorm_check(RmsNormParams{}, Tensor::zeros({4, 17}), Tensor::zeros({17})).is_ok());
  EXPECT_TRUE(rmsnorm_check(RmsNormParams{}, Tensor::zeros({0, 17}), Tensor::zeros({17})).is_ok());
}

TEST(RmsNormCheck, RejectsBadInputs) {
  Tensor x = Tensor::zeros({4, 17}), w = Tensor::zeros({17});
  expect_error(rmsnorm_check(RmsNormParams{0.0f}, x, w), "[rmsnorm] eps = 0: must be finite and > 0");
  expect_error(rmsnorm_check(RmsNormParams{-1e-5f}, x, w), "[rmsnorm] eps = -1e-05: must be finite and > 0");
  EXPECT_FALSE(rmsnorm_check(RmsNormParams{std::nanf("")}, x, w).is_ok());
  expect_error(rmsnorm_check(RmsNormParams{}, Tensor::zeros({4, 17}, DType::BF16), w),
               "[rmsnorm] x.dtype = bf16: must be f32");
  expect_error(rmsnorm_check(RmsNormParams{}, x, Tensor::zeros({17}, DType::I32)), "[rmsnorm] w.dtype = i32: must be f32");
  expect_error(rmsnorm_check(RmsNormParams{}, Tensor::zeros({68}), w), "[rmsnorm] x.shape = [68]: must be [N, D]");
  expect_error(rmsnorm_check(RmsNormParams{}, Tensor::zeros({4, 0}), Tensor::zeros({0})),
               "[rmsnorm] x.shape = [4, 0]: D must be >= 1");
  expect_error(rmsnorm_check(RmsNormParams{}, x, Tensor::zeros({16})), "[rmsnorm] w.shape = [16]: must be [17] (D of x)");
}

TEST(SwigluCheck, AcceptsValidInputs) { EXPECT_TRUE(swiglu_check(Tensor::zeros({3, 34})).is_ok()); }

TEST(SwigluCheck, RejectsBadInputs) {
  expect_error(swiglu_check(Tensor::zeros({3, 34}, DType::I32)), "[swiglu] gu.dtype = i32: must be f32");
  expect_error(swiglu_check(Tensor::zeros({34})), "[swiglu] gu.shape = [34]: must be [N, 2F]");
  expect_error(swiglu_check(Tensor::zeros({3, 17})),
               "[swiglu] gu.shape = [3, 17]: last dim 17 must be even and >= 2 (gate | up)");
  expect_error(swiglu_check(Tensor::zeros({3, 0})),
               "[swiglu] gu.shape = [3, 0]: last dim 0 must be even and >= 2 (gate | up)");
}

}  // namespace
}  // namespace speedlm::ops
