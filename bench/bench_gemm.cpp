#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ops/linalg/gemm/gemm.h"

namespace speedlm::ops {

static void BM_gemm(benchmark::State& state) {
  int64_t n = state.range(0);
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  for (auto _ : state) gemm(false, true, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_gemm)->Arg(256)->Arg(512)->Arg(1024);

}  // namespace speedlm::ops

namespace speedlm::ops {

// The three bf16 GEMMs of one linear layer in training, at the default model's shapes
// (N = 16 x 256 tokens): forward y = x W^T, weight gradient dW = dy^T x, input gradient dx = dy W.
// Args: Din, Dout, which (0 fwd, 1 dW, 2 dX).
static void BM_gemm_bf16_linear(benchmark::State& state) {
  const int64_t N = 4096, Din = state.range(0), Dout = state.range(1), which = state.range(2);
  std::vector<uint16_t> x(N * Din, 0x3f00), w(Dout * Din, 0x3e80), dy(N * Dout, 0x3e00);
  std::vector<float> out(std::max(N * std::max(Din, Dout), Din * Dout));
  for (auto _ : state) {
    if (which == 0) gemm_bf16(false, true, N, Dout, Din, 1.0f, x.data(), Din, w.data(), Din, 0.0f, out.data(), Dout);
    if (which == 1) gemm_bf16(true, false, Dout, Din, N, 1.0f, dy.data(), Dout, x.data(), Din, 1.0f, out.data(), Din);
    if (which == 2) gemm_bf16(false, false, N, Din, Dout, 1.0f, dy.data(), Dout, w.data(), Din, 0.0f, out.data(), Din);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * N * Din * Dout, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
BENCHMARK(BM_gemm_bf16_linear)
    ->ArgsProduct({{384}, {640, 384, 2048, 4096}, {0, 1, 2}})
    ->Args({1024, 384, 0})->Args({1024, 384, 1})->Args({1024, 384, 2})
    ->ArgNames({"Din", "Dout", "op"});

}  // namespace speedlm::ops
