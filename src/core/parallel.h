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

// parallel_for with grain 1 for items that run library GEMMs themselves (one head of a chunked
// recurrence walks its chunks in order). Items never split below one per thread; when everything
// runs on the calling thread (one item, or one thread), the GEMMs inside stay on it too: oneDNN
// would otherwise fork a team for each small GEMM and the idle workers spin.
template <typename Fn>
void parallel_for_items(int64_t n, Fn&& fn) {
  if (n <= 0) return;
  if (omp_in_parallel() || (n > 1 && num_threads() > 1)) {
    parallel_for(n, 1, fn);
    return;
  }
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  fn(int64_t{0}, n);
  omp_set_num_threads(saved);
}

}  // namespace speedlm
