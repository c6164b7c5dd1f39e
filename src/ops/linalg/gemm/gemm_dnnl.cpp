// oneDNN 2.x matmul behind the gemm() contract. Primitive creation costs 0.2-0.5 ms
// (research/deps.md §2), so one primitive per distinct call signature is cached.
#include <map>
#include <mutex>
#include <tuple>

#include <oneapi/dnnl/dnnl.hpp>

#include "ops/linalg/gemm/gemm.h"

namespace speedlm::ops {

namespace {

using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float>;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

struct Cached {
  dnnl::matmul prim;
  dnnl::memory::desc a, b, c;
};

const Cached& lookup(const Key& key) {
  static std::mutex mu;
  static std::map<Key, Cached> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  auto [ta, tb, M, N, K, lda, ldb, ldc, alpha, beta] = key;
  using dt = dnnl::memory::data_type;
  dnnl::memory::desc a({M, K}, dt::f32, ta ? dnnl::memory::dims{1, lda} : dnnl::memory::dims{lda, 1});
  dnnl::memory::desc b({K, N}, dt::f32, tb ? dnnl::memory::dims{1, ldb} : dnnl::memory::dims{ldb, 1});
  dnnl::memory::desc c({M, N}, dt::f32, dnnl::memory::dims{ldc, 1});
  dnnl::primitive_attr attr;
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, cpu_engine());
  return cache.emplace(key, Cached{dnnl::matmul(pd), a, b, c}).first->second;
}

}  // namespace

void gemm_dnnl(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const Cached& p = lookup(Key{trans_a, trans_b, M, N, K, lda, ldb, ldc, alpha, beta});
  thread_local dnnl::stream stream(cpu_engine());
  dnnl::engine& eng = cpu_engine();
  dnnl::memory a(p.a, eng, const_cast<float*>(A));
  dnnl::memory b(p.b, eng, const_cast<float*>(B));
  dnnl::memory c(p.c, eng, C);
  p.prim.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}});
  stream.wait();
}

}  // namespace speedlm::ops
