// The fused tape nodes (swiglu_mlp, linear_cross_entropy) against the compositions they
// replace: in the bf16 matmul mode bit for bit (values and every gradient), in f32 they are
// the composition.
#include <gtest/gtest.h>

#include <vector>

#include "autograd/functions.h"
#include "core/rng.h"

namespace speedlm::ag {
namespace {

Tensor normal(Shape shape, uint64_t seed, float scale) {
  Tensor t = Tensor::empty(std::move(shape));
  Rng rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = scale * rng.normal();
  return t;
}

struct Bf16Mode {
  Bf16Mode() { set_matmul_precision(MatmulPrecision::Bf16); }
  ~Bf16Mode() { set_matmul_precision(MatmulPrecision::F32); }
};

void expect_bitwise_equal(const Tensor& a, const Tensor& b, const char* what) {
  ASSERT_TRUE(a.defined() && b.defined()) << what;
  ASSERT_EQ(a.numel(), b.numel()) << what;
  int64_t diff = 0;
  for (int64_t i = 0; i < a.numel(); ++i) diff += a.f32()[i] != b.f32()[i];
  EXPECT_EQ(diff, 0) << what << ": elements differing of " << a.numel();
}

// Runs the tape with d(output) = dy (the scalar passed to backward() is a detached seed).
void run_backward_from(const Var& out, const Tensor& dy) {
  out.grad_buffer().copy_from(dy);
  backward(Var(Tensor::full({1}, 0.0f), true));
}

// Fresh leaves holding copies of the given values, so each variant starts from clean gradients.
struct Leaves {
  Var x, w1, w2;
  Leaves(const Tensor& x0, const Tensor& w10, const Tensor& w20)
      : x(x0.clone(), true), w1(w10.clone(), true), w2(w20.clone(), true) {}
};

TEST(FusedSwiGluMlp, Bf16EqualsTheCompositionBitForBit) {
  Bf16Mode mode;
  const int64_t N = 70, D = 48, F = 80;
  Tensor x0 = normal({N, D}, 1, 1.0f), wgu0 = normal({2 * F, D}, 2, 0.2f), wd0 = normal({D, F}, 3, 0.2f);
  Tensor dy = normal({N, D}, 4, 1.0f);
  auto run = [&](bool fused) {
    Leaves l(x0, wgu0, wd0);
    Var y = fused ? swiglu_mlp(l.x, l.w1, l.w2) : linear(swiglu(linear(l.x, l.w1)), l.w2);
    run_backward_from(y, dy);
    return std::vector<Tensor>{y.value().clone(), l.x.grad().clone(), l.w1.grad().clone(), l.w2.grad().clone()};
  };
  auto composed = run(false), fused = run(true);
  const char* names[] = {"y", "dx", "dw_gate_up", "dw_down"};
  for (int i = 0; i < 4; ++i) expect_bitwise_equal(fused[i], composed[i], names[i]);
}

TEST(FusedSwiGluMlp, F32IsTheComposition) {
  const int64_t N = 33, D = 16, F = 24;
  Tensor x0 = normal({N, D}, 5, 1.0f), wgu0 = normal({2 * F, D}, 6, 0.3f), wd0 = normal({D, F}, 7, 0.3f);
  Leaves a(x0, wgu0, wd0), b(x0, wgu0, wd0);
  expect_bitwise_equal(swiglu_mlp(a.x, a.w1, a.w2).value(), linear(swiglu(linear(b.x, b.w1)), b.w2).value(), "y");
  clear_tape();
}

TEST(FusedLinearCrossEntropy, Bf16EqualsTheCompositionBitForBit) {
  Bf16Mode mode;
  const int64_t N = 45, D = 40, V = 300;
  Tensor x0 = normal({N, D}, 8, 1.0f), w0 = normal({V, D}, 9, 0.3f), unused = normal({1, 1}, 10, 1.0f);
  Tensor targets = Tensor::empty({N}, DType::I32);
  for (int64_t n = 0; n < N; ++n) targets.i32()[n] = static_cast<int32_t>((n * 37) % V);
  targets.i32()[7] = -100;  // ignored row
  auto run = [&](bool fused) {
    Leaves l(x0, w0, unused);
    Var loss = fused ? linear_cross_entropy(l.x, l.w1, targets, {}) : cross_entropy(linear(l.x, l.w1), targets, {});
    backward(loss);
    return std::vector<Tensor>{loss.value().clone(), l.x.grad().clone(), l.w1.grad().clone()};
  };
  auto composed = run(false), fused = run(true);
  EXPECT_GT(composed[0].f32()[0], 1.0f);  // a real loss, not a degenerate zero
  const char* names[] = {"loss", "dx", "dw"};
  for (int i = 0; i < 3; ++i) expect_bitwise_equal(fused[i], composed[i], names[i]);
}

}  // namespace
}  // namespace speedlm::ag
