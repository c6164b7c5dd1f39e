#include "ops/linalg/gemm/gemm.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

// Reference: C = op(A) op(B) in double; dA = dC op(B)^T, dB = op(A)^T dC (mapped back to storage).
OpCase gemm_case(bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
  OpCase c;
  c.label = fmt::format("{}{} M={} N={} K={}", ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K);
  c.inputs = {{"A", ta ? Shape{K, M} : Shape{M, K}}, {"B", tb ? Shape{N, K} : Shape{K, N}}};
  auto a_at = [=](const DBuf& A, int64_t i, int64_t k) { return ta ? A[k * M + i] : A[i * K + k]; };
  auto b_at = [=](const DBuf& B, int64_t k, int64_t j) { return tb ? B[j * K + k] : B[k * N + j]; };
  c.ref_fwd = [=](const DBufs& in) {
    DBuf C({M, N});
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0.0;
        for (int64_t k = 0; k < K; ++k) acc += a_at(in[0], i, k) * b_at(in[1], k, j);
        C[i * N + j] = acc;
      }
    return DBufs{C};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBuf dA(in[0].shape), dB(in[1].shape);
    const DBuf& dC = dout[0];
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        for (int64_t k = 0; k < K; ++k) {
          double g = dC[i * N + j];
          (ta ? dA[k * M + i] : dA[i * K + k]) += g * b_at(in[1], k, j);
          (tb ? dB[j * K + k] : dB[k * N + j]) += g * a_at(in[0], i, k);
        }
    return DBufs{dA, dB};
  };
  for (GemmBackend backend : {GemmBackend::Dnnl, GemmBackend::Blas}) {
    OpForm f;
    f.name = gemm_backend_name(backend);
    auto run = [backend](bool ta_, bool tb_, int64_t m, int64_t n, int64_t k, const float* A, int64_t lda,
                         const float* B, int64_t ldb, float* C) {
      GemmBackend saved = gemm_backend();
      set_gemm_backend(backend);
      gemm(ta_, tb_, m, n, k, 1.0f, A, lda, B, ldb, 0.0f, C, n);
      set_gemm_backend(saved);
    };
    f.fwd = [=](const Tensors& in) {
      Tensor C = Tensor::empty({M, N});
      run(ta, tb, M, N, K, in[0].f32(), ta ? M : K, in[1].f32(), tb ? K : N, C.f32());
      return Tensors{C};
    };
    f.bwd = [=](const Tensors& in, const Tensors& dout) {
      Tensor dA = Tensor::empty(in[0].shape()), dB = Tensor::empty(in[1].shape());
      const float* dC = dout[0].f32();
      // dA (stored [M,K] or [K,M]) and dB (stored [K,N] or [N,K]) each as one GEMM.
      if (!ta) run(false, !tb, M, K, N, dC, N, in[1].f32(), tb ? K : N, dA.f32());
      else run(tb, true, K, M, N, in[1].f32(), tb ? K : N, dC, N, dA.f32());
      if (!tb) run(!ta, false, K, N, M, in[0].f32(), ta ? M : K, dC, N, dB.f32());
      else run(true, ta, N, K, M, dC, N, in[0].f32(), ta ? M : K, dB.f32());
      return Tensors{dA, dB};
    };
    c.forms.push_back(f);
  }
  return c;
}

}  // namespace

OpEntry gemm_registry_entry() {
  OpEntry e;
  e.name = "gemm";
  e.cases = [] {
    std::vector<OpCase> cases;
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        cases.push_back(gemm_case(ta, tb, 1, 33, 17));
        cases.push_back(gemm_case(ta, tb, 65, 63, 64));
        cases.push_back(gemm_case(ta, tb, 7, 129, 5));
      }
    return cases;
  };
  return e;
}

}  // namespace speedlm::ops
