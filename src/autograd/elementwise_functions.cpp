#include "autograd/elementwise_functions.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "autograd/grad_sink.h"
#include "core/parallel.h"
#include "core/simd_math.h"

namespace speedlm::ag {

namespace {

constexpr int64_t kGrain = 4096;

// y = f(x) element-wise with dx = dy * f'(x) recomputed from x.
template <typename Fwd, typename Deriv>
Var unary(const Var& x, Fwd f, Deriv df) {
  const int64_t n = x.value().numel();
  Var y(Tensor::empty(x.shape()), needs_grad({&x}));
  const float* xv = x.value().f32();
  float* yv = y.value().f32();
  parallel_for(n, kGrain, [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) yv[i] = f(xv[i]);
  });
  if (y.requires_grad())
    record([x, df, out = y.shared(), n] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(x);
      const float *xv = x.value().f32(), *dy = out->grad.f32();
      float* dx = d.target.f32();
      parallel_for(n, kGrain, [&](int64_t i0, int64_t i1) {
#pragma omp simd
        for (int64_t i = i0; i < i1; ++i) dx[i] = dy[i] * df(xv[i]);
      });
      commit(x, d);
      release(out);
    });
  return y;
}

}  // namespace

Var reshape(const Var& x, Shape shape) {
  Var y(x.value().reshape(shape), needs_grad({&x}));
  if (y.requires_grad())
    record([x, out = y.shared()] {
      if (!out->grad.defined()) return;
      pass_through(x, out);
      release(out);
    });
  return y;
}

std::vector<Var> split_cols(const Var& x, const std::vector<int64_t>& widths) {
  const int64_t N = x.dim(0), F = x.dim(1);
  int64_t total = 0;
  for (int64_t w : widths) total += w;
  SPEEDLM_ASSERT(total == F, "split_cols: widths sum to {}, x has {} columns", total, F);
  const bool rg = needs_grad({&x});
  const int64_t grain = std::max<int64_t>(1, 32768 / F);
  std::vector<Var> parts;
  std::vector<std::shared_ptr<VarImpl>> outs;
  std::vector<float*> dst;
  for (int64_t w : widths) {
    parts.emplace_back(Tensor::empty({N, w}), rg);
    outs.push_back(parts.back().shared());
    dst.push_back(parts.back().value().f32());
  }
  const float* src = x.value().f32();
  // One pass over x's rows, each row split into every part while it is in cache.
  parallel_for(N, grain, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const float* row = src + n * F;
      for (size_t i = 0; i < widths.size(); ++i) {
        std::memcpy(dst[i] + n * widths[i], row, sizeof(float) * widths[i]);
        row += widths[i];
      }
    }
  });
  if (rg)
    // One closure for all parts: when x has no gradient yet the parts' gradients are copied
    // into a fresh buffer (zeros where a part has none) instead of added into zeros.
    record([x, outs, widths, N, F, grain] {
      bool any = false;
      for (const auto& o : outs) any = any || o->grad.defined();
      if (!any) return;
      const bool fresh = !x.grad().defined();
      if (fresh) x.impl()->grad = Tensor::empty(x.shape());
      float* dx = x.grad().f32();
      parallel_for(N, grain, [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n) {
          float* __restrict row = dx + n * F;
          for (size_t i = 0; i < outs.size(); ++i) {
            const int64_t w = widths[i];
            const float* __restrict g = outs[i]->grad.defined() ? outs[i]->grad.f32() + n * w : nullptr;
            if (fresh && g) std::memcpy(row, g, sizeof(float) * w);
            else if (fresh) std::memset(row, 0, sizeof(float) * w);
            else if (g) {
#pragma omp simd
              for (int64_t j = 0; j < w; ++j) row[j] += g[j];
            }
            row += w;
          }
        }
      });
      for (const auto& o : outs) release(o);
    });
  return parts;
}

Var mul_silu(const Var& a, const Var& b) {
  SPEEDLM_ASSERT(a.value().same_shape(b.value()), "mul_silu: {} vs {}", shape_str(a.shape()), shape_str(b.shape()));
  const int64_t n = a.value().numel();
  Var y(Tensor::empty(a.shape()), needs_grad({&a, &b}));
  const float *av = a.value().f32(), *bv = b.value().f32();
  float* yv = y.value().f32();
  parallel_for(n, kGrain, [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; ++i) yv[i] = av[i] * bv[i] * sigmoid_f32(bv[i]);
  });
  if (y.requires_grad())
    record([a, b, out = y.shared(), n] {
      if (!out->grad.defined()) return;
      GradSink da = grad_sink(a), db = grad_sink(b);
      const float *av = a.value().f32(), *bv = b.value().f32(), *dy = out->grad.f32();
      float *ga = da.target.f32(), *gb = db.target.f32();
      parallel_for(n, kGrain, [&](int64_t i0, int64_t i1) {
#pragma omp simd
        for (int64_t i = i0; i < i1; ++i) {
          const float s = sigmoid_f32(bv[i]);
          ga[i] = dy[i] * bv[i] * s;
          gb[i] = dy[i] * av[i] * s * (1.0f + bv[i] * (1.0f - s));
        }
      });
      commit(a, da);
      commit(b, db);
      release(out);
    });
  return y;
}

Var log_sigmoid_gate(const Var& x, const Var& bias, float inv_norm) {
  const int64_t N = x.dim(0), F = x.dim(1);
  SPEEDLM_ASSERT(bias.value().numel() == F, "log_sigmoid_gate: bias {} for {} columns", bias.value().numel(), F);
  Var y(Tensor::empty(x.shape()), needs_grad({&x, &bias}));
  const float *xv = x.value().f32(), *bv = bias.value().f32();
  float* yv = y.value().f32();
  // logsigmoid(u) = min(u, 0) - log1p(exp(-|u|)), finite for every u.
  parallel_for(N, std::max<int64_t>(1, 8192 / F), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
#pragma omp simd
      for (int64_t f = 0; f < F; ++f) {
        const float u = xv[n * F + f] + bv[f];
        yv[n * F + f] = inv_norm * (std::min(u, 0.0f) - log1p_f32(exp_f32(-std::abs(u))));
      }
  });
  if (y.requires_grad())
    record([x, bias, inv_norm, out = y.shared(), N, F] {
      if (!out->grad.defined()) return;
      GradSink dx = grad_sink(x);
      const float *xv = x.value().f32(), *bv = bias.value().f32(), *dy = out->grad.f32();
      float* gx = dx.target.f32();
      // d logsigmoid(u) / du = sigmoid(-u)
      parallel_for(N, std::max<int64_t>(1, 8192 / F), [&](int64_t n0, int64_t n1) {
        for (int64_t n = n0; n < n1; ++n)
#pragma omp simd
          for (int64_t f = 0; f < F; ++f)
            gx[n * F + f] = dy[n * F + f] * inv_norm * sigmoid_f32(-(xv[n * F + f] + bv[f]));
      });
      if (bias.requires_grad()) {
        float* gb = bias.grad_buffer().f32();
        for (int64_t n = 0; n < N; ++n)
#pragma omp simd
          for (int64_t f = 0; f < F; ++f) gb[f] += gx[n * F + f];
      }
      commit(x, dx);
      release(out);
    });
  return y;
}

Var elu_plus_one(const Var& x) {
  return unary(
      x, [](float v) { return v > 0.0f ? v + 1.0f : exp_f32(std::min(v, 0.0f)); },
      [](float v) { return v > 0.0f ? 1.0f : exp_f32(std::min(v, 0.0f)); });
}

Var relu_square(const Var& x) {
  return unary(
      x, [](float v) { return v > 0.0f ? v * v : 0.0f; }, [](float v) { return v > 0.0f ? 2.0f * v : 0.0f; });
}

Var append_ones(const Var& v, int64_t H, int64_t V) {
  const int64_t N = v.dim(0);
  Var y(Tensor::empty({N, H * (V + 1)}), needs_grad({&v}));
  const float* src = v.value().f32();
  float* dst = y.value().f32();
  for (int64_t r = 0; r < N * H; ++r) {
    std::memcpy(dst + r * (V + 1), src + r * V, sizeof(float) * V);
    dst[r * (V + 1) + V] = 1.0f;
  }
  if (y.requires_grad())
    record([v, out = y.shared(), N, H, V] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(v);
      const float* g = out->grad.f32();
      float* dv = d.target.f32();
      for (int64_t r = 0; r < N * H; ++r) std::memcpy(dv + r * V, g + r * (V + 1), sizeof(float) * V);
      commit(v, d);
      release(out);
    });
  return y;
}

Var divide_by_last(const Var& o, int64_t H, int64_t V, float eps) {
  const int64_t N = o.dim(0);
  Var y(Tensor::empty({N, H * V}), needs_grad({&o}));
  const float* src = o.value().f32();
  float* dst = y.value().f32();
  for (int64_t r = 0; r < N * H; ++r) {
    const float inv = 1.0f / (src[r * (V + 1) + V] + eps);
    for (int64_t j = 0; j < V; ++j) dst[r * V + j] = src[r * (V + 1) + j] * inv;
  }
  if (y.requires_grad())
    record([o, eps, out = y.shared(), N, H, V] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(o);
      const float *src = o.value().f32(), *dy = out->grad.f32();
      float* g = d.target.f32();
      // y_j = o_j / den, den = o_V + eps: do_j = dy_j / den, do_V = -sum_j dy_j o_j / den^2.
      for (int64_t r = 0; r < N * H; ++r) {
        const float inv = 1.0f / (src[r * (V + 1) + V] + eps);
        float acc = 0.0f;
        for (int64_t j = 0; j < V; ++j) {
          g[r * (V + 1) + j] = dy[r * V + j] * inv;
          acc += dy[r * V + j] * src[r * (V + 1) + j];
        }
        g[r * (V + 1) + V] = -acc * inv * inv;
      }
      commit(o, d);
      release(out);
    });
  return y;
}

}  // namespace speedlm::ag
