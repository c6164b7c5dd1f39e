// The allocator's pool of large buffers: it reuses buffers across steps (its purpose: no page
// faults in a steady training loop) without keeping one buffer per size ever seen.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "core/tensor_bytes.h"
#include "speedlm/tensor.h"

namespace speedlm {
namespace {

// Pooled bytes a tensor of `rows` x `cols` floats takes: its size rounded up to a sixteenth of
// its power of two (the pool's size classes).
size_t class_bytes(int64_t rows, int64_t cols) {
  size_t b = static_cast<size_t>(rows * cols) * sizeof(float), step = 1;
  while (step * 2 <= b) step *= 2;
  step /= 16;
  return (b + step - 1) / step * step;
}

TEST(TensorPool, ShapesThatVaryALittleReuseOneBuffer) {
  // An MoE layer's routed rows change every step by less than a sixteenth.
  const void* first = nullptr;
  for (int64_t rows : {8200, 8300, 8191 + 512}) {
    Tensor t = Tensor::empty({rows, 256});
    if (!first) first = t.data<void>();
    EXPECT_EQ(t.data<void>(), first) << rows << " rows";
  }
}

TEST(TensorPool, AStepOfTwoPhasesReusesItsBuffersEveryStep) {
  // The forward holds big activations, the backward then allocates other sizes: the activations'
  // buffers must still be there for the next step's forward.
  std::set<const void*> seen;
  for (int step = 0; step < 3; ++step) {
    std::set<const void*> ptrs;
    {
      std::vector<Tensor> fwd;
      for (int i = 0; i < 4; ++i) fwd.push_back(Tensor::empty({4096, 256}));
      for (const Tensor& t : fwd) ptrs.insert(t.data<void>());
    }
    {
      std::vector<Tensor> bwd;
      for (int i = 0; i < 4; ++i) bwd.push_back(Tensor::empty({3000, 256}));
      for (const Tensor& t : bwd) ptrs.insert(t.data<void>());
    }
    if (step > 0) {
      EXPECT_EQ(ptrs, seen) << "step " << step << " got fresh buffers";
    }
    seen = ptrs;
  }
}

TEST(TensorPool, CachedBytesFollowThePeakNotTheHistoryOfSizes) {
  // 60 steps of 4 live [R, 256] buffers with R drifting over 8 octaves: an exact-size cache
  // would keep ~240 buffers. Live plus cached pooled bytes stay within twice the most pooled
  // bytes ever live at once, which here is 4 buffers of the largest class used.
  const size_t base = tensor_live_bytes() + tensor_pool_cached_bytes();
  size_t peak = 0;
  for (int step = 0; step < 60; ++step) {
    const int64_t rows = (int64_t{1} << (8 + step % 8)) + 37 * step;
    std::vector<Tensor> live;
    for (int i = 0; i < 4; ++i) live.push_back(Tensor::empty({rows, 256}));
    peak = std::max(peak, 4 * class_bytes(rows, 256));
  }
  EXPECT_LE(tensor_live_bytes() + tensor_pool_cached_bytes(), base + 2 * peak);
}

}  // namespace
}  // namespace speedlm
