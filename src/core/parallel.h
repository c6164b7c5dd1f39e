// OpenMP helpers. A parallel region costs ~0.6 us here (research/deps.md §4):
// callers pass a grain so each thread gets at least ~30 us of work.
#pragma once

#include <algorithm>
#include <cstdint>

#include <omp.h>

namespace speedlm {

inline int num_threads() { return omp_get_max_threads(); }
void set_num_threads(int n);

// Calls fn(begin, end) on disjoint ranges covering [0, n); ranges hold >= grain items
// unless n is smaller. Runs inline when one range suffices.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
  int threads = static_cast<int>(std::min<int64_t>(num_threads(), max_chunks));
  if (threads <= 1 || omp_in_parallel()) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace speedlm
