// Op-specific properties beyond the generic registry checks: invariants of the math
// (rotations, shift invariance), aliasing, accumulation and determinism contracts.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "core/rng.h"
#include "core/simd_math.h"
#include "ops/elementwise/add/add.h"
#include "ops/loss/cross_entropy/cross_entropy.h"
#include "ops/nn/embedding/embedding.h"
#include "ops/norm/rmsnorm/rmsnorm.h"
#include "ops/pos/rope/rope.h"

namespace speedlm::ops {
namespace {

std::vector<float> normal(size_t n, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = scale * rng.normal();
  return v;
}

// Runs fn with the OpenMP thread count set to n, then restores it.
template <typename Fn>
void with_threads(int n, Fn&& fn) {
  int saved = num_threads();
  set_num_threads(n);
  fn();
  set_num_threads(saved);
}

TEST(SimdMath, ExpMatchesLibm) {
  double worst = 0.0;
  for (float x = -87.0f; x <= 0.0f; x += 0.00137f) {
    double ref = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(exp_f32(x) - ref) / ref);
  }
  EXPECT_LT(worst, 3e-7);
  EXPECT_GT(exp_f32(-1000.0f), 0.0f);
  EXPECT_LT(exp_f32(-1000.0f), 2e-38f);
  EXPECT_EQ(exp_f32(0.0f), 1.0f);
}

TEST(SimdMath, SigmoidSaturatesWithoutOverflow) {
  EXPECT_EQ(sigmoid_f32(200.0f), 1.0f);
  EXPECT_GE(sigmoid_f32(-200.0f), 0.0f);
  EXPECT_LT(sigmoid_f32(-200.0f), 2e-38f);
  EXPECT_NEAR(sigmoid_f32(-30.0f) / std::exp(-30.0), 1.0, 1e-6);
  EXPECT_EQ(sigmoid_f32(0.0f), 0.5f);
}

TEST(Rope, PreservesHeadNormsAndBackwardInvertsForward) {
  const int64_t B = 2, T = 9, H = 3, Dh = 130;
  std::vector<float> x = normal(B * T * H * Dh, 1), y(x.size()), back(x.size());
  std::vector<int32_t> pos = {0, 1, 2, 3, 100, 4095, 65535, 99999, 2147483647,
                              7, 8, 9, 10, 11, 12, 13, 14, 1000000};
  rope_fast_fwd(RopeParams{}, x.data(), pos.data(), B, T, H, Dh, y.data());
  rope_fast_bwd(RopeParams{}, y.data(), pos.data(), B, T, H, Dh, back.data());
  for (int64_t v = 0; v < B * T * H; ++v) {
    double nx = 0.0, ny = 0.0;
    for (int64_t d = 0; d < Dh; ++d) {
      nx += double(x[v * Dh + d]) * x[v * Dh + d];
      ny += double(y[v * Dh + d]) * y[v * Dh + d];
      EXPECT_NEAR(back[v * Dh + d], x[v * Dh + d], 2e-6) << "vector " << v << " d " << d;
    }
    EXPECT_NEAR(std::sqrt(ny / nx), 1.0, 1e-6) << "vector " << v;
  }
  // Position 0 is the identity, exactly.
  for (int64_t i = 0; i < H * Dh; ++i) EXPECT_EQ(y[i], x[i]);
}

TEST(Rope, InPlaceEqualsOutOfPlace) {
  const int64_t B = 1, T = 5, H = 2, Dh = 64;
  std::vector<float> x = normal(B * T * H * Dh, 2), y(x.size()), z = x;
  std::vector<int32_t> pos = {3, 1, 4, 100000, 5926};
  rope_fast_fwd(RopeParams{}, x.data(), pos.data(), B, T, H, Dh, y.data());
  rope_fast_fwd(RopeParams{}, z.data(), pos.data(), B, T, H, Dh, z.data());
  EXPECT_EQ(y, z);
}

// RoPE's point: <rope(q, m), rope(k, n)> depends on m - n only. At m ~ 1e5 this needs angles
// accurate far beyond f32 (ulp(1e5) ~ 0.008 rad).
TEST(Rope, DotProductDependsOnlyOnRelativePosition) {
  const int64_t Dh = 128;
  std::vector<float> q = normal(Dh, 3), k = normal(Dh, 4);
  auto score = [&](int32_t m, int32_t n) {
    std::vector<float> qr(Dh), kr(Dh);
    rope_fast_fwd(RopeParams{}, q.data(), &m, 1, 1, 1, Dh, qr.data());
    rope_fast_fwd(RopeParams{}, k.data(), &n, 1, 1, 1, Dh, kr.data());
    double s = 0.0;
    for (int64_t d = 0; d < Dh; ++d) s += double(qr[d]) * kr[d];
    return s;
  };
  for (int32_t delta : {0, 1, 7, 300}) {
    double near_origin = score(delta + 5, 5);
    EXPECT_NEAR(score(100000 + delta, 100000), near_origin, 2e-5 * Dh) << "delta " << delta;
    EXPECT_NEAR(score(1000003 + delta, 1000003), near_origin, 2e-5 * Dh) << "delta " << delta;
  }
}

TEST(CrossEntropy, InPlaceBackwardEqualsOutOfPlace) {
  const int64_t N = 37, V = 1001;
  std::vector<float> logits = normal(N * V, 5, 3.0f), loss(N), lse(N), d_loss = normal(N, 6), d(N * V);
  std::vector<int32_t> targets(N);
  for (int64_t n = 0; n < N; ++n) targets[n] = n % 5 == 0 ? -100 : static_cast<int32_t>((n * 131) % V);
  CrossEntropyParams p;
  cross_entropy_fast_fwd(p, logits.data(), targets.data(), N, V, loss.data(), lse.data());
  cross_entropy_fast_bwd(p, logits.data(), targets.data(), lse.data(), d_loss.data(), N, V, d.data());
  std::vector<float> inplace = logits;
  cross_entropy_fast_bwd(p, inplace.data(), targets.data(), lse.data(), d_loss.data(), N, V, inplace.data());
  EXPECT_EQ(inplace, d);
  // The reference form's in-place backward agrees too.
  std::vector<double> ld(logits.begin(), logits.end()), dl(d_loss.begin(), d_loss.end()), dd(N * V);
  cross_entropy_ref_bwd<double>(p, ld.data(), targets.data(), dl.data(), N, V, dd.data());
  cross_entropy_ref_bwd<double>(p, ld.data(), targets.data(), dl.data(), N, V, ld.data());
  EXPECT_EQ(ld, dd);
}

TEST(CrossEntropy, KnownValuesAndShiftInvariance) {
  const int64_t N = 3, V = 4096;
  std::vector<float> logits(N * V, 0.0f), loss(N), lse(N);
  for (int64_t j = 0; j < V; ++j) logits[V + j] = 1000.0f + 0.5f * (j % 7);  // row 1: row 0 shifted by ~1e3
  for (int64_t j = 0; j < V; ++j) logits[j] = 0.5f * (j % 7);
  logits[2 * V + 9] = 3000.0f;  // row 2: one dominant logit, the target
  std::vector<int32_t> targets = {3, 3, 9};
  CrossEntropyParams p;
  cross_entropy_fast_fwd(p, logits.data(), targets.data(), N, V, loss.data(), lse.data());
  EXPECT_NEAR(loss[0], loss[1], 1e-5 * loss[0]);
  EXPECT_NEAR(lse[1] - lse[0], 1000.0f, 1e-3);
  EXPECT_EQ(loss[2], 0.0f);  // (m - z_t) + log(1 + 4095 e^-3000), no cancellation at lse ~ 3000
  std::vector<float> uniform(2 * V, 0.25f), l2(2), s2(2);
  std::vector<int32_t> t2 = {17, -100};
  cross_entropy_fast_fwd(p, uniform.data(), t2.data(), 2, V, l2.data(), s2.data());
  EXPECT_NEAR(l2[0], std::log(4096.0), 1e-6);
  EXPECT_EQ(l2[1], 0.0f);
}

TEST(RmsNorm, WeightGradientIsDeterministicAndAccumulates) {
  const int64_t N = 4099, D = 65;
  std::vector<float> x = normal(N * D, 7), w = normal(D, 8), dy = normal(N * D, 9), y(N * D), rstd(N), dx(N * D);
  RmsNormParams p;
  rmsnorm_fast_fwd(p, x.data(), w.data(), N, D, y.data(), rstd.data());
  with_threads(3, [&] {
    std::vector<float> dw1(D, 0.0f), dw2(D, 0.0f);
    rmsnorm_fast_bwd(p, x.data(), w.data(), rstd.data(), dy.data(), N, D, dx.data(), dw1.data());
    rmsnorm_fast_bwd(p, x.data(), w.data(), rstd.data(), dy.data(), N, D, dx.data(), dw2.data());
    EXPECT_EQ(dw1, dw2);
    rmsnorm_fast_bwd(p, x.data(), w.data(), rstd.data(), dy.data(), N, D, dx.data(), dw2.data());
    for (int64_t d = 0; d < D; ++d) EXPECT_NEAR(dw2[d], 2.0f * dw1[d], 1e-5f * std::abs(dw1[d]) + 1e-6f);
  });
}

TEST(RmsNorm, InputGradientAccumulatesOnRequest) {
  const int64_t N = 301, D = 65;
  std::vector<float> x = normal(N * D, 10), w = normal(D, 11), dy = normal(N * D, 12), y(N * D), rstd(N);
  std::vector<float> prior = normal(N * D, 13), dx(N * D), acc = prior, dw(D, 0.0f);
  RmsNormParams p;
  rmsnorm_fast_fwd(p, x.data(), w.data(), N, D, y.data(), rstd.data());
  rmsnorm_fast_bwd(p, x.data(), w.data(), rstd.data(), dy.data(), N, D, dx.data(), dw.data());
  rmsnorm_fast_bwd(p, x.data(), w.data(), rstd.data(), dy.data(), N, D, acc.data(), dw.data(), true);
  for (int64_t i = 0; i < N * D; ++i)
    ASSERT_NEAR(acc[i], prior[i] + dx[i], 1e-6f * (std::abs(prior[i]) + std::abs(dx[i]))) << i;
}

TEST(Embedding, BackwardIsDeterministicAndAccumulates) {
  const int64_t N = 5000, V = 7, D = 70;
  std::vector<int32_t> ids(N);
  for (int64_t n = 0; n < N; ++n) ids[n] = static_cast<int32_t>((n * n) % V);
  std::vector<float> d_out = normal(N * D, 10);
  with_threads(3, [&] {
    std::vector<float> a(V * D, 1.0f), b(V * D, 1.0f);
    embedding_fast_bwd(ids.data(), N, d_out.data(), V, D, a.data());
    embedding_fast_bwd(ids.data(), N, d_out.data(), V, D, b.data());
    EXPECT_EQ(a, b);
    std::vector<double> ref(V * D, 1.0), d_out_d(d_out.begin(), d_out.end());
    embedding_ref_bwd<double>(ids.data(), N, d_out_d.data(), D, ref.data());
    for (int64_t i = 0; i < V * D; ++i) EXPECT_NEAR(a[i], ref[i], 1e-4 * (1.0 + std::abs(ref[i])));
  });
}

TEST(Add, InPlaceAccumulates) {
  std::vector<float> y = {1.0f, 2.0f, 3.0f}, x = {0.5f, -2.0f, 10.0f};
  add_fast_inplace(y.data(), x.data(), 3);
  EXPECT_EQ(y, (std::vector<float>{1.5f, 0.0f, 13.0f}));
  add_fast_fwd(y.data(), y.data(), 3, y.data());
  EXPECT_EQ(y, (std::vector<float>{3.0f, 0.0f, 26.0f}));
}

}  // namespace
}  // namespace speedlm::ops
