// The BLAS GEMM reference of a benchmark run in process CPU time: the same 1024^3 f32 ops::gemm
// call as measure_gemm_gflops, timed in process CPU seconds like the chunk-kernel counters that
// are divided by it (gemm_frac). CPU time is robust to other processes sharing the cores and
// exact with one thread (run with OMP_NUM_THREADS=1). Measured once per process.
#pragma once

#include <ctime>
#include <vector>

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
    int calls = 0;
    const double t0 = process_cpu_seconds();
    while (calls < 3 || process_cpu_seconds() - t0 < 0.5) run(), ++calls;
    return 2.0 * n * n * n * calls / (process_cpu_seconds() - t0) * 1e-9;
  }();
  return rate;
}

}  // namespace speedlm::bench
