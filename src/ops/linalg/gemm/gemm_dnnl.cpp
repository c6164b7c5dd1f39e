// oneDNN 2.x matmul behind the gemm() contract. Primitive creation costs 0.2-0.5 ms
// (research/deps.md §2), so one primitive per distinct call signature is cached.
#include <cstdint>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "ops/linalg/gemm/gemm.h"

namespace speedlm::ops {

namespace {

using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float, bool>;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

struct Cached {
  dnnl::matmul prim;
  dnnl::memory::desc a, b, c, scratch;
};

const Cached& lookup(const Key& key) {
  static std::mutex mu;
  static std::map<Key, Cached> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  auto [ta, tb, M, N, K, lda, ldb, ldc, alpha, beta, bf16] = key;
  using dt = dnnl::memory::data_type;
  dt in = bf16 ? dt::bf16 : dt::f32;
  dnnl::memory::desc a({M, K}, in, ta ? dnnl::memory::dims{1, lda} : dnnl::memory::dims{lda, 1});
  dnnl::memory::desc b({K, N}, in, tb ? dnnl::memory::dims{1, ldb} : dnnl::memory::dims{ldb, 1});
  dnnl::memory::desc c({M, N}, dt::f32, dnnl::memory::dims{ldc, 1});
  dnnl::primitive_attr attr;
  // A user scratchpad per calling thread: with oneDNN's default (library) scratchpad, two
  // threads running primitives at once (attention's per-head GEMMs) can share one buffer.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, cpu_engine());
  return cache.emplace(key, Cached{dnnl::matmul(pd), a, b, c, pd.scratchpad_desc()}).first->second;
}

void execute(const Key& key, const void* A, const void* B, float* C) {
  const Cached& p = lookup(key);
  thread_local dnnl::stream stream(cpu_engine());
  dnnl::engine& eng = cpu_engine();
  dnnl::memory a(p.a, eng, const_cast<void*>(A));
  dnnl::memory b(p.b, eng, const_cast<void*>(B));
  dnnl::memory c(p.c, eng, C);
  thread_local std::vector<char> scratch;
  size_t bytes = p.scratch.get_size() + 64;
  if (scratch.size() < bytes) scratch.resize(bytes);
  void* aligned = scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
  dnnl::memory pad(p.scratch, eng, aligned);
  p.prim.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}, {DNNL_ARG_SCRATCHPAD, pad}});
  stream.wait();
}

}  // namespace

void gemm_dnnl(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  execute(Key{trans_a, trans_b, M, N, K, lda, ldb, ldc, alpha, beta, false}, A, B, C);
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
               int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  execute(Key{trans_a, trans_b, M, N, K, lda, ldb, ldc, alpha, beta, true}, A, B, C);
}

}  // namespace speedlm::ops
