// relu_square (the RWKV channel mix's activation): forward values and the backward against central
// finite differences of the forward, for positive and negative inputs.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/elementwise_functions.h"
#include "core/rng.h"

namespace speedlm::ag {
namespace {

TEST(ReluSquare, BackwardMatchesFiniteDifferencesOfTheForward) {
  const int64_t N = 7, F = 13;
  const float eps = 1e-2f;
  Rng rng(3);
  Tensor x0 = Tensor::empty({N, F}), dy = Tensor::empty({N, F});
  for (int64_t i = 0; i < x0.numel(); ++i) {
    // Keep |x| > eps so that x +- eps stays on one side of the kink at 0.
    float v = rng.normal();
    x0.f32()[i] = std::fabs(v) < 2 * eps ? (v < 0 ? -0.5f : 0.5f) : v;
    dy.f32()[i] = rng.normal();
  }
  Var x(x0.clone(), true);
  Var y = relu_square(x);
  for (int64_t i = 0; i < x0.numel(); ++i) {
    const float v = x0.f32()[i];
    EXPECT_EQ(y.value().f32()[i], v > 0 ? v * v : 0.0f) << i;
  }
  // Seed d(y) = dy and run the tape (the scalar passed to backward() is a detached seed).
  y.grad_buffer().copy_from(dy);
  backward(Var(Tensor::full({1}, 0.0f), true));
  ASSERT_TRUE(x.grad().defined());
  int64_t negatives = 0;
  for (int64_t i = 0; i < x0.numel(); ++i) {
    Tensor xp = x0.clone(), xm = x0.clone();
    xp.f32()[i] += eps;
    xm.f32()[i] -= eps;
    NoGradGuard guard;
    const double fd = (static_cast<double>(relu_square(Var(xp)).value().f32()[i]) -
                       relu_square(Var(xm)).value().f32()[i]) / (2.0 * eps);
    const double expected = dy.f32()[i] * fd;
    EXPECT_NEAR(x.grad().f32()[i], expected, 1e-5 + 1e-4 * std::fabs(expected)) << "x[" << i << "] = " << x0.f32()[i];
    negatives += x0.f32()[i] < 0;
  }
  EXPECT_GT(negatives, 10);  // both branches are exercised
}

}  // namespace
}  // namespace speedlm::ag
