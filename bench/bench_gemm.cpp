#include <benchmark/benchmark.h>

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
