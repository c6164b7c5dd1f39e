// The BLAS GEMM reference of a benchmark run in process CPU time: the same 1024^3 f32 ops::gemm
// call as measure_gemm_gflops, timed in process CPU seconds like the chunk-kernel counters that
// are divided by it (gemm_frac). CPU time is robust to other processes sharing the cores and
// exact with one thread (run with OMP_NUM_THREADS=1). Measured once per process, best of 5.
#pragma once

#include <algorithm>
#include <ctime>
#include <vector>

#include <benchmark/benchmark.h>

#include "core/rng.h"
#include "ops/linalg/gemm/gemm.h"

namespace speedlm::bench {

inline double process_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

inline double gemm_cpu_rate() {
  static const double rate = [] {
    const int64_t n = 1024;
    std::vector<float> a(n * n), b(n * n), c(n * n);
    Rng rng(1);
    for (float& x : a) x = rng.normal();
    for (float& x : b) x = rng.normal();
    auto run = [&] { ops::gemm(false, true, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n); };
    run();
    double best = 0.0;  // other processes only slow it down: the best of 5 trials is the rate
    for (int trial = 0; trial < 5; ++trial) {
      int calls = 0;
      const double t0 = process_cpu_seconds();
      while (calls < 2 || process_cpu_seconds() - t0 < 0.15) run(), ++calls;
      best = std::max(best, 2.0 * n * n * n * calls / (process_cpu_seconds() - t0) * 1e-9);
    }
    return best;
  }();
  return rate;
}

// Adds "min" and "max" to a benchmark's repetition statistics: the min of a time and the max of
// a rate (GFLOP/s, gemm_frac) are the best repetition's, the least disturbed on a shared machine.
inline void best_of_repetitions(benchmark::internal::Benchmark* b) {
  b->ComputeStatistics("min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); });
  b->ComputeStatistics("max", [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); });
}

}  // namespace speedlm::bench
