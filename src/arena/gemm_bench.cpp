// GEMM throughput: the denominator of model FLOP utilisation and `speedlm bench gemm`.
#include <chrono>

#include "core/parallel.h"
#include "core/rng.h"
#include "ops/linalg/gemm/gemm.h"
#include "speedlm/speedlm.h"
#include "speedlm/tensor.h"

namespace speedlm {

namespace {

// GFLOP/s of C = A B^T (the Linear layer's shape: weights stored [N, K]) over ~`seconds`,
// with f32 operands or (bf16 = true) bf16 operands and f32 accumulation.
double time_gemm(int64_t M, int64_t N, int64_t K, double seconds, bool bf16 = false) {
  Tensor a = Tensor::empty({M, K}), b = Tensor::empty({N, K}), c = Tensor::empty({M, N});
  Rng rng(1);
  for (Tensor* t : {&a, &b})
    for (int64_t i = 0; i < t->numel(); ++i) t->f32()[i] = rng.uniform() - 0.5f;
  Tensor a16 = a.to(DType::BF16), b16 = b.to(DType::BF16);
  auto run = [&] {
    if (bf16) ops::gemm_bf16(false, true, M, N, K, 1.0f, a16.bf16(), K, b16.bf16(), K, 0.0f, c.f32(), N);
    else ops::gemm(false, true, M, N, K, 1.0f, a.f32(), K, b.f32(), K, 0.0f, c.f32(), N);
  };
  run();  // creates and caches the primitive
  using Clock = std::chrono::steady_clock;
  int64_t calls = 0;
  Clock::time_point t0 = Clock::now();
  double elapsed = 0.0;
  while (calls < 3 || elapsed < seconds) {
    run();
    ++calls;
    elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  return 2.0 * M * N * K * calls / elapsed * 1e-9;
}

}  // namespace

double measure_gemm_gflops(int threads, bool bf16) {
  int saved = num_threads();
  set_num_threads(threads);
  double g = time_gemm(1024, 1024, 1024, 0.3, bf16);
  set_num_threads(saved);
  return g;
}

Result<std::vector<GemmBenchRow>> bench_gemm(const std::vector<int64_t>& sizes, int threads, double seconds) {
  if (threads < 0) return Status::errorf("bench", "--threads = {}: must be >= 0", threads);
  if (!(seconds > 0)) return Status::errorf("bench", "--seconds = {}: must be > 0", seconds);
  int saved = num_threads();
  if (threads > 0) set_num_threads(threads);
  std::vector<GemmBenchRow> rows;
  ops::GemmBackend saved_backend = ops::gemm_backend();
  for (ops::GemmBackend backend : {ops::GemmBackend::Dnnl, ops::GemmBackend::Blas}) {
    ops::set_gemm_backend(backend);
    for (int64_t n : sizes) {
      if (n < 1 || n > 16384) return Status::errorf("bench", "size = {}: must be in [1, 16384]", n);
      rows.push_back({ops::gemm_backend_name(backend), n, n, n, num_threads(), time_gemm(n, n, n, seconds)});
    }
  }
  ops::set_gemm_backend(saved_backend);
  for (int64_t n : sizes) rows.push_back({"onednn-bf16", n, n, n, num_threads(), time_gemm(n, n, n, seconds, true)});
  set_num_threads(saved);
  return rows;
}

}  // namespace speedlm
