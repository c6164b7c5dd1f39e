// Grouped expert compute: the routed slots are gathered into one [R, D] matrix, expert by
// expert (contiguous rows); each expert runs two GEMMs over its rows; the outputs are
// combined back per token with the router weights. Every reduction over tokens (the
// combine, dx) is a loop per token in slot order, so results do not depend on threads.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "ops/activation/swiglu/swiglu.h"
#include "ops/linalg/gemm/gemm.h"
#include "ops/moe/moe.h"

namespace speedlm::ops {

namespace {

// Rows of D floats are cheap to copy: 64 rows per piece.
constexpr int64_t kRowGrain = 64;

// C (+)= op(A) op(B) with f32 operands, or bf16 operands when bf16 (A, B then point at bf16).
void mm(bool bf16, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const void* A, int64_t lda, const void* B,
        int64_t ldb, float beta, float* C, int64_t ldc) {
  if (bf16)
    gemm_bf16(ta, tb, M, N, K, 1.0f, static_cast<const uint16_t*>(A), lda, static_cast<const uint16_t*>(B), ldb,
              beta, C, ldc);
  else
    gemm(ta, tb, M, N, K, 1.0f, static_cast<const float*>(A), lda, static_cast<const float*>(B), ldb, beta, C, ldc);
}

// Row `row` of a [rows, cols] f32 or bf16 activation.
const void* at(const Tensor& t, int64_t row, int64_t cols) {
  return t.dtype() == DType::BF16 ? static_cast<const void*>(t.bf16() + row * cols)
                                  : static_cast<const void*>(t.f32() + row * cols);
}

// Expert e's block of a weight stored [E, rows, cols], in the GEMM precision.
const void* weight_of(bool bf16, const float* w, const uint16_t* w16, int64_t e, int64_t size) {
  return bf16 ? static_cast<const void*>(w16 + e * size) : static_cast<const void*>(w + e * size);
}

// Calls fn(e, o, M) for every expert with rows [o, o + M). With at least two experts per thread,
// the experts are spread over the threads (one parallel region, single-threaded GEMMs: the
// biggest groups first, each to the least loaded thread); else one after another, each GEMM
// threaded. A parallel region per small GEMM costs more than the GEMM on a busy machine.
template <typename Fn>
void for_each_expert(const MoeRouting& r, Fn&& fn) {
  std::vector<int64_t> active;
  for (int64_t e = 0; e < r.E; ++e)
    if (r.offset[e + 1] > r.offset[e]) active.push_back(e);
  const int nt = num_threads();
  if (nt <= 1 || static_cast<int64_t>(active.size()) < 2 * nt || omp_in_parallel()) {
    for (int64_t e : active) fn(e, r.offset[e], r.offset[e + 1] - r.offset[e]);
    return;
  }
  auto rows = [&](int64_t e) { return r.offset[e + 1] - r.offset[e]; };
  std::stable_sort(active.begin(), active.end(), [&](int64_t a, int64_t b) { return rows(a) > rows(b); });
  std::vector<std::vector<int64_t>> mine(nt);
  std::vector<int64_t> load(nt, 0);
  for (int64_t e : active) {
    int t = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    mine[t].push_back(e);
    load[t] += rows(e);
  }
#pragma omp parallel num_threads(nt)
  {
    // The runtime may grant fewer threads than asked: the granted ones share the lists.
    for (int t = omp_get_thread_num(); t < nt; t += omp_get_num_threads())
      for (int64_t e : mine[t]) fn(e, r.offset[e], rows(e));
  }
}

Tensor maybe_bf16(const Tensor& t, bool bf16) { return bf16 ? t.to(DType::BF16) : t; }

// x: [N, D] -> [R, D] tokens gathered by expert, zero padding rows (bf16 when bf16).
Tensor gather_rows(const MoeRouting& r, int64_t D, const float* x, bool bf16) {
  Tensor xg = Tensor::empty({r.rows(), D});
  parallel_for(r.rows(), kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      int64_t s = r.slot[i];
      if (s < 0) std::memset(xg.f32() + i * D, 0, sizeof(float) * D);
      else std::memcpy(xg.f32() + i * D, x + (s / r.k) * D, sizeof(float) * D);
    }
  });
  return maybe_bf16(xg, bf16);
}

// hg: [R, 2F] -> [R, F] silu(g) * u (bf16 when bf16).
Tensor swiglu_rows(const Tensor& hg, int64_t F, bool bf16) {
  Tensor ag = Tensor::empty({hg.dim(0), F});
  swiglu_fast_fwd(hg.f32(), hg.dim(0), F, ag.f32());
  return maybe_bf16(ag, bf16);
}

}  // namespace

void moe_grouped_fwd(const MoeParams& p, const MoeRouting& r, int64_t D, const float* x, const MoeExpertWeights& w,
                     float* y, MoeSaved* saved) {
  const int64_t R = r.rows(), F = p.F, k = p.k, N = r.N;
  const bool h = p.bf16;
  Tensor xg = gather_rows(r, D, x, h);
  Tensor hg = Tensor::empty({R, 2 * F}), yg = Tensor::empty({R, D});
  for_each_expert(r, [&](int64_t e, int64_t o, int64_t M) {
    mm(h, false, true, M, 2 * F, D, at(xg, o, D), D, weight_of(h, w.gate_up, w.gate_up_bf16, e, 2 * F * D), D, 0.0f,
       hg.f32() + o * 2 * F, 2 * F);
  });
  xg = Tensor();
  Tensor ag = swiglu_rows(hg, F, h);
  for_each_expert(r, [&](int64_t e, int64_t o, int64_t M) {
    mm(h, false, true, M, D, F, at(ag, o, F), F, weight_of(h, w.down, w.down_bf16, e, D * F), F, 0.0f,
       yg.f32() + o * D, D);
  });
  parallel_for(N, kRowGrain, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      float* yn = y + n * D;
      std::memset(yn, 0, sizeof(float) * D);
      for (int64_t j = 0; j < k; ++j) {
        int64_t row = r.row[n * k + j];
        if (row < 0) continue;
        const float wt = r.weight[n * k + j], *src = yg.f32() + row * D;
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) yn[d] += wt * src[d];
      }
    }
  });
  if (saved) *saved = MoeSaved{x, hg, yg};
}

void moe_grouped_bwd(const MoeParams& p, const MoeRouting& r, int64_t D, const MoeExpertWeights& w,
                     const MoeSaved& saved, const float* dy, float* dx, float* d_weight, float* d_gate_up,
                     float* d_down) {
  const int64_t R = r.rows(), F = p.F, k = p.k, N = r.N;
  const bool h = p.bf16;
  // y_n = sum_j w_nj yg_row: d_weight_nj = dy_n . yg_row, dyg_row = w_nj dy_n.
  Tensor dyg = Tensor::empty({R, D});
  parallel_for(R, kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      int64_t s = r.slot[i];
      float* dst = dyg.f32() + i * D;
      if (s < 0) {
        std::memset(dst, 0, sizeof(float) * D);
        continue;
      }
      const float wt = r.weight[s], *src = dy + (s / k) * D, *out = saved.yg.f32() + i * D;
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int64_t d = 0; d < D; ++d) dst[d] = wt * src[d], dot += src[d] * out[d];
      d_weight[s] = dot;
    }
  });
  for (int64_t s = 0; s < N * k; ++s)
    if (r.row[s] < 0) d_weight[s] = 0.0f;
  dyg = maybe_bf16(dyg, h);
  Tensor ag = swiglu_rows(saved.hg, F, h), dag = Tensor::empty({R, F});
  for_each_expert(r, [&](int64_t e, int64_t o, int64_t M) {
    // o = W2 a: dW2 += dyg^T a, da = dyg W2.
    mm(h, true, false, D, F, M, at(dyg, o, D), D, at(ag, o, F), F, 1.0f, d_down + e * D * F, F);
    mm(h, false, false, M, F, D, at(dyg, o, D), D, weight_of(h, w.down, w.down_bf16, e, D * F), F, 0.0f,
       dag.f32() + o * F, F);
  });
  // Each [R, .] buffer is released once used: the backward holds at most R (3D + 4F) floats
  // (R (D + 5F) when F > 2D), the saved ones included.
  dyg = Tensor(), ag = Tensor();
  Tensor dhg = Tensor::empty({R, 2 * F});
  swiglu_fast_bwd(saved.hg.f32(), dag.f32(), R, F, dhg.f32());
  dag = Tensor();
  dhg = maybe_bf16(dhg, h);
  Tensor xg = gather_rows(r, D, saved.x, h), dxg = Tensor::empty({R, D});
  for_each_expert(r, [&](int64_t e, int64_t o, int64_t M) {
    // h = W1 x: dW1 += dh^T x, dx = dh W1.
    mm(h, true, false, 2 * F, D, M, at(dhg, o, 2 * F), 2 * F, at(xg, o, D), D, 1.0f,
       d_gate_up + e * 2 * F * D, D);
    mm(h, false, false, M, D, 2 * F, at(dhg, o, 2 * F), 2 * F, weight_of(h, w.gate_up, w.gate_up_bf16, e, 2 * F * D),
       D, 0.0f, dxg.f32() + o * D, D);
  });
  parallel_for(N, kRowGrain, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      float* dxn = dx + n * D;
      std::memset(dxn, 0, sizeof(float) * D);
      for (int64_t j = 0; j < k; ++j) {
        int64_t row = r.row[n * k + j];
        if (row < 0) continue;
        const float* src = dxg.f32() + row * D;
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) dxn[d] += src[d];
      }
    }
  });
}

}  // namespace speedlm::ops
