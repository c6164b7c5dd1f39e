// Memory of the grouped MoE form: it scales with the routed rows (N k, padded), never with
// N E or E N D. Measured with the tensor byte counter (core/tensor_bytes.h).
#include <gtest/gtest.h>

#include "core/rng.h"
#include "core/tensor_bytes.h"
#include "ops/moe/moe.h"
#include "random_tensor.h"

namespace speedlm::ops {
namespace {

using testing::random_tensor;

TEST(MoeMemory, OneLayerForwardBackwardScalesWithRoutedRows) {
  MoeParams p;
  p.E = 32, p.k = 4, p.F = 32;
  const int64_t N = 1024, D = 64;
  Tensor x = random_tensor({N, D}, 1.0, 1), logits = random_tensor({N, p.E}, 1.0, 2), dy = random_tensor({N, D}, 1.0, 3);
  Tensor w1 = random_tensor({p.E, 2 * p.F, D}, 0.1, 4), w2 = random_tensor({p.E, D, p.F}, 0.1, 5);
  Tensor y = Tensor::empty({N, D}), dx = Tensor::empty({N, D}), dw = Tensor::empty({N * p.k});
  Tensor d1 = Tensor::zeros(w1.shape()), d2 = Tensor::zeros(w2.shape());
  MoeRouting r = moe_route(p, N, logits.f32(), nullptr);
  const MoeExpertWeights w{w1.f32(), w2.f32()};

  // Each expert's group of m rows is padded to at most m + m/16 rows: R <= (17/16) N k.
  const int64_t R = r.rows(), max_rows = (17 * N * p.k + 15) / 16;
  ASSERT_LE(R, max_rows);
  // Saved for the backward: the gate | up pre-activations [R, 2F] (the SwiGLU backward needs
  // them) and the unweighted expert outputs [R, D] (the router weights' gradient is dy . o):
  // (D + 2F) floats a routed row. The gathered tokens and silu(g) * u are recomputed.
  // Backward, worst phase (dW1, dx): the saved ones plus dh [R, 2F], the re-gathered tokens
  // [R, D] and d(gathered tokens) [R, D]: (3D + 4F) floats a routed row. Each tensor's bytes
  // are rounded up to 64: at most 64 bytes more for each of the few buffers alive at once.
  const size_t row_bytes = sizeof(float), slack = 8 * 64;
  const size_t saved_bound = max_rows * (D + 2 * p.F) * row_bytes + slack;
  const size_t peak_bound = max_rows * (3 * D + 4 * p.F) * row_bytes + slack;

  const size_t before = tensor_live_bytes();
  reset_tensor_peak_bytes();
  {
    MoeSaved saved;
    moe_grouped_fwd(p, r, D, x.f32(), w, y.f32(), &saved);
    EXPECT_LE(tensor_live_bytes() - before, saved_bound) << "bytes kept for the backward, R = " << R;
    moe_grouped_bwd(p, r, D, w, saved, dy.f32(), dx.f32(), dw.f32(), d1.f32(), d2.f32());
  }
  EXPECT_LE(tensor_peak_bytes() - before, peak_bound) << "R = " << R;
  EXPECT_EQ(tensor_live_bytes(), before);
}

}  // namespace
}  // namespace speedlm::ops
