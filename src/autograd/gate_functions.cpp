#include "autograd/gate_functions.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "autograd/grad_sink.h"
#include "core/parallel.h"
#include "core/simd_math.h"

namespace speedlm::ag {

namespace {

// Adds column sums of g [N, F] into bias's gradient (in double: N is B*T).
void add_col_sums(const Var& bias, const float* g, int64_t N, int64_t F) {
  if (!bias.requires_grad()) return;
  std::vector<double> sums(F, 0.0);
  double* __restrict acc = sums.data();
  for (int64_t n = 0; n < N; ++n)
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) acc[f] += g[n * F + f];
  float* gb = bias.grad_buffer().f32();
  for (int64_t f = 0; f < F; ++f) gb[f] += static_cast<float>(sums[f]);
}

// exp of each element of a row vector ([H]), once per call instead of once per row.
std::vector<float> exp_row(const Var& v) {
  const float* p = v.value().f32();
  std::vector<float> r(v.value().numel());
  for (size_t i = 0; i < r.size(); ++i) r[i] = std::exp(p[i]);
  return r;
}

// One head of l2norm_heads: y = x / sqrt(|x|^2 + eps); returns the scale. Shared with the fused
// split so both compile to the same sums.
inline float l2norm_row(const float* __restrict x, float* __restrict y, int64_t K, float eps) {
  float ss = 0.0f;
  for (int64_t j = 0; j < K; ++j) ss += x[j] * x[j];
  const float s = 1.0f / std::sqrt(ss + eps);
#pragma omp simd
  for (int64_t j = 0; j < K; ++j) y[j] = x[j] * s;
  return s;
}

// Its backward: dx = rstd (dy - y <dy, y>).
inline void l2norm_row_bwd(const float* __restrict y, const float* __restrict dy, float rstd, float* __restrict dx,
                           int64_t K) {
  float dot = 0.0f;
  for (int64_t j = 0; j < K; ++j) dot += dy[j] * y[j];
#pragma omp simd
  for (int64_t j = 0; j < K; ++j) dx[j] = rstd * (dy[j] - y[j] * dot);
}

}  // namespace

Var sigmoid(const Var& x) {
  const int64_t n = x.value().numel();
  Var y(Tensor::empty(x.shape()), needs_grad({&x}));
  const float* __restrict xv = x.value().f32();
  float* __restrict yv = y.value().f32();
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) yv[i] = sigmoid_f32(xv[i]);
  if (y.requires_grad())
    record([x, out = y.shared(), n] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(x);
      const float *__restrict yv = out->value.f32(), *__restrict dy = out->grad.f32();
      float* __restrict dx = d.target.f32();
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * yv[i] * (1.0f - yv[i]);
      commit(x, d);
      release(out);
    });
  return y;
}

Var l2norm_heads(const Var& x, int64_t H, float eps) {
  SPEEDLM_ASSERT(x.dim(1) % H == 0, "l2norm_heads: {} columns for {} heads", x.dim(1), H);
  const int64_t K = x.dim(1) / H, rows = x.dim(0) * H;
  Var y(Tensor::empty(x.shape()), needs_grad({&x}));
  Tensor rstd = Tensor::empty({rows});
  const float* __restrict xv = x.value().f32();
  float *__restrict yv = y.value().f32(), *__restrict rs = rstd.f32();
  parallel_for(rows, 256, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) rs[r] = l2norm_row(xv + r * K, yv + r * K, K, eps);
  });
  if (y.requires_grad())
    record([x, rstd, rows, K, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(x);
      const float *__restrict yv = out->value.f32(), *__restrict dy = out->grad.f32(), *__restrict rs = rstd.f32();
      float* __restrict dx = d.target.f32();
      // dx = rstd (dy - y <dy, y>)
      parallel_for(rows, 256, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) l2norm_row_bwd(yv + r * K, dy + r * K, rs[r], dx + r * K, K);
      });
      commit(x, d);
      release(out);
    });
  return y;
}

std::vector<Var> l2norm_qk_split(const Var& qkv, int64_t H, int64_t K, int64_t V, float eps) {
  const int64_t N = qkv.dim(0), F = qkv.dim(1), HK = H * K, HV = H * V;
  SPEEDLM_ASSERT(F == 2 * HK + HV, "l2norm_qk_split: {} columns for H={} K={} V={}", F, H, K, V);
  const bool rg = needs_grad({&qkv});
  std::vector<Var> out = {Var(Tensor::empty({N, HK}), rg), Var(Tensor::empty({N, HK}), rg),
                          Var(Tensor::empty({N, HV}), rg)};
  Tensor rstd = Tensor::empty({2, N, H});  // q's scales, then k's
  const float* __restrict xv = qkv.value().f32();
  float *__restrict qv = out[0].value().f32(), *__restrict kv = out[1].value().f32();
  float *__restrict vv = out[2].value().f32(), *__restrict rs = rstd.f32();
  const int64_t grain = std::max<int64_t>(1, 256 / H);
  parallel_for(N, grain, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* row = xv + n * F;
      for (int64_t h = 0; h < H; ++h) {
        rs[n * H + h] = l2norm_row(row + h * K, qv + n * HK + h * K, K, eps);
        rs[(N + n) * H + h] = l2norm_row(row + HK + h * K, kv + n * HK + h * K, K, eps);
      }
      std::memcpy(vv + n * HV, row + 2 * HK, sizeof(float) * HV);
    }
  });
  if (rg)
    // One closure writes every column of qkv's gradient (copied into a fresh buffer, or added),
    // zeros where an output has no gradient, as split_cols does.
    record([qkv, rstd, N, F, H, K, HK, HV, grain, q = out[0].shared(), k = out[1].shared(), v = out[2].shared()] {
      if (!q->grad.defined() && !k->grad.defined() && !v->grad.defined()) return;
      const bool fresh = !qkv.grad().defined();
      if (fresh) qkv.impl()->grad = Tensor::empty(qkv.shape());
      float* dx = qkv.grad().f32();
      const float* rs = rstd.f32();
      // dst[0, w) = src (fresh) or += src; src null: zeros (fresh) or nothing.
      const auto put = [fresh](float* __restrict dst, const float* __restrict src, int64_t w) {
        if (fresh && src) std::memcpy(dst, src, sizeof(float) * w);
        else if (fresh) std::memset(dst, 0, sizeof(float) * w);
        else if (src) {
#pragma omp simd
          for (int64_t j = 0; j < w; ++j) dst[j] += src[j];
        }
      };
      parallel_for(N, grain, [&](int64_t n0, int64_t n1) {
        std::vector<float> tmp(static_cast<size_t>(K));
        for (int64_t n = n0; n < n1; ++n) {
          float* row = dx + n * F;
          for (int64_t part = 0; part < 2; ++part) {
            const VarImpl& o = part == 0 ? *q : *k;
            float* dst = row + part * HK;
            for (int64_t h = 0; h < H; ++h) {
              if (!o.grad.defined()) {
                put(dst + h * K, nullptr, K);
                continue;
              }
              const int64_t at = n * HK + h * K;
              float* d = fresh ? dst + h * K : tmp.data();
              l2norm_row_bwd(o.value.f32() + at, o.grad.f32() + at, rs[(part * N + n) * H + h], d, K);
              if (!fresh) put(dst + h * K, tmp.data(), K);
            }
          }
          put(row + 2 * HK, v->grad.defined() ? v->grad.f32() + n * HV : nullptr, HV);
        }
      });
      release(q), release(k), release(v);
    });
  return out;
}

Var softplus_bias(const Var& x, const Var& bias) {
  const int64_t N = x.dim(0), F = x.dim(1);
  SPEEDLM_ASSERT(bias.value().numel() == F, "softplus_bias: bias {} for {} columns", bias.value().numel(), F);
  Var y(Tensor::empty(x.shape()), needs_grad({&x, &bias}));
  const float *__restrict xv = x.value().f32(), *__restrict bv = bias.value().f32();
  float* __restrict yv = y.value().f32();
  for (int64_t n = 0; n < N; ++n)
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) yv[n * F + f] = softplus_f32(xv[n * F + f] + bv[f]);
  if (y.requires_grad())
    record([x, bias, N, F, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(x);
      const float *__restrict xv = x.value().f32(), *__restrict bv = bias.value().f32(), *__restrict dy = out->grad.f32();
      float* __restrict dx = d.target.f32();
      for (int64_t n = 0; n < N; ++n)
#pragma omp simd
        for (int64_t f = 0; f < F; ++f) dx[n * F + f] = dy[n * F + f] * sigmoid_f32(xv[n * F + f] + bv[f]);
      add_col_sums(bias, dx, N, F);
      commit(x, d);
      release(out);
    });
  return y;
}

Var neg_exp(const Var& x) {
  const int64_t n = x.value().numel();
  Var y(Tensor::empty(x.shape()), needs_grad({&x}));
  const float* __restrict xv = x.value().f32();
  float* __restrict yv = y.value().f32();
  for (int64_t i = 0; i < n; ++i) yv[i] = -std::exp(xv[i]);
  if (y.requires_grad())
    record([x, n, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(x);
      const float *__restrict dy = out->grad.f32(), *__restrict yv = out->value.f32();
      float* __restrict dx = d.target.f32();
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * yv[i];
      commit(x, d);
      release(out);
    });
  return y;
}

Var gdn_gate(const Var& a, const Var& dt_bias, const Var& a_log) {
  const int64_t N = a.dim(0), H = a.dim(1);
  SPEEDLM_ASSERT(dt_bias.value().numel() == H && a_log.value().numel() == H, "gdn_gate: {} heads", H);
  Var y(Tensor::empty(a.shape()), needs_grad({&a, &dt_bias, &a_log}));
  const float *__restrict av = a.value().f32(), *__restrict bv = dt_bias.value().f32();
  const std::vector<float> A = exp_row(a_log);
  float* __restrict yv = y.value().f32();
  for (int64_t n = 0; n < N; ++n)
#pragma omp simd
    for (int64_t h = 0; h < H; ++h) yv[n * H + h] = -A[h] * softplus_f32(av[n * H + h] + bv[h]);
  if (y.requires_grad())
    record([a, dt_bias, a_log, N, H, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(a);
      const float *__restrict av = a.value().f32(), *__restrict bv = dt_bias.value().f32();
      const float *__restrict yv = out->value.f32(), *__restrict dy = out->grad.f32();
      const std::vector<float> A = exp_row(a_log);
      float* __restrict da = d.target.f32();
      // dg/du = -exp(A_log) softplus'(u);  dg/dA_log = g.
      std::vector<double> dl(H, 0.0);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t h = 0; h < H; ++h) {
          const int64_t i = n * H + h;
          da[i] = -dy[i] * A[h] * sigmoid_f32(av[i] + bv[h]);
          dl[h] += static_cast<double>(dy[i]) * yv[i];
        }
      add_col_sums(dt_bias, da, N, H);
      if (a_log.requires_grad())
        for (int64_t h = 0; h < H; ++h) a_log.grad_buffer().f32()[h] += static_cast<float>(dl[h]);
      commit(a, d);
      release(out);
    });
  return y;
}

}  // namespace speedlm::ag
