#include "autograd/rwkv_functions.h"

#include <cmath>
#include <vector>

#include "autograd/grad_sink.h"

namespace speedlm::ag {

// The loops below walk [N, F] row by row with the pointers hoisted, so the inner loop over F
// vectorises. Column sums accumulate in double over the rows in order, as the spec does.

namespace {

// Adds the column sums of g [N, F] into w's gradient (w: [F]).
void add_col_sums(const Var& w, const std::vector<double>& acc) {
  if (!w.requires_grad()) return;
  float* gw = w.grad_buffer().f32();
  for (size_t f = 0; f < acc.size(); ++f) gw[f] += static_cast<float>(acc[f]);
}

// The backward of y = x * w with w [F] broadcast over the rows of x [N, F]: dx = dy * w, and the
// column sums of dy * x (accumulated in double, rows in order) for w's gradient.
std::vector<double> row_scale_grads(const float* __restrict dy, const float* __restrict x, const float* __restrict w,
                                    int64_t N, int64_t F, float* __restrict dx) {
  std::vector<double> acc(F, 0.0);
  double* __restrict dw = acc.data();
  for (int64_t n = 0; n < N; ++n)
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) {
      const int64_t i = n * F + f;
      dx[i] = dy[i] * w[f];
      dw[f] += dy[i] * x[i];
    }
  return acc;
}

void check_row(const Var& x, const Var& w, const char* what) {
  SPEEDLM_ASSERT(w.value().numel() == x.dim(1), "{}: row of {} for {} columns", what, w.value().numel(), x.dim(1));
}

void check_same(const Var& a, const Var& b, const char* what) {
  SPEEDLM_ASSERT(a.value().same_shape(b.value()), "{}: {} vs {}", what, shape_str(a.shape()), shape_str(b.shape()));
}

}  // namespace

Var tanh(const Var& x) {
  const int64_t n = x.value().numel();
  Var y(Tensor::empty(x.shape()), needs_grad({&x}));
  const float* __restrict xv = x.value().f32();
  float* __restrict yv = y.value().f32();
  for (int64_t i = 0; i < n; ++i) yv[i] = std::tanh(xv[i]);
  if (y.requires_grad())
    record([x, n, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(x);
      const float *__restrict yv = out->value.f32(), *__restrict dy = out->grad.f32();
      float* __restrict dx = d.target.f32();
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.0f - yv[i] * yv[i]);
      commit(x, d);
      release(out);
    });
  return y;
}

Var add_row(const Var& x, const Var& b) {
  check_row(x, b, "add_row");
  const int64_t N = x.dim(0), F = x.dim(1);
  Var y(Tensor::empty(x.shape()), needs_grad({&x, &b}));
  const float *__restrict xv = x.value().f32(), *__restrict bv = b.value().f32();
  float* __restrict yv = y.value().f32();
  for (int64_t n = 0; n < N; ++n)
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) yv[n * F + f] = xv[n * F + f] + bv[f];
  if (y.requires_grad())
    record([x, b, N, F, out = y.shared()] {
      if (!out->grad.defined()) return;
      const float* __restrict dy = out->grad.f32();
      if (b.requires_grad()) {
        std::vector<double> acc(F, 0.0);
        double* __restrict db = acc.data();
        for (int64_t n = 0; n < N; ++n)
#pragma omp simd
          for (int64_t f = 0; f < F; ++f) db[f] += dy[n * F + f];
        add_col_sums(b, acc);
      }
      pass_through(x, out);
      release(out);
    });
  return y;
}

Var mul(const Var& a, const Var& b) {
  check_same(a, b, "mul");
  const int64_t n = a.value().numel();
  Var y(Tensor::empty(a.shape()), needs_grad({&a, &b}));
  const float *__restrict av = a.value().f32(), *__restrict bv = b.value().f32();
  float* __restrict yv = y.value().f32();
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) yv[i] = av[i] * bv[i];
  if (y.requires_grad())
    record([a, b, n, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink da = grad_sink(a), db = grad_sink(b);
      const float *__restrict av = a.value().f32(), *__restrict bv = b.value().f32(), *__restrict dy = out->grad.f32();
      float *__restrict ga = da.target.f32(), *__restrict gb = db.target.f32();
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        ga[i] = dy[i] * bv[i];
        gb[i] = dy[i] * av[i];
      }
      commit(a, da);
      commit(b, db);
      release(out);
    });
  return y;
}

Var mul_row(const Var& x, const Var& w) {
  check_row(x, w, "mul_row");
  const int64_t N = x.dim(0), F = x.dim(1);
  Var y(Tensor::empty(x.shape()), needs_grad({&x, &w}));
  const float *__restrict xv = x.value().f32(), *__restrict wv = w.value().f32();
  float* __restrict yv = y.value().f32();
  for (int64_t n = 0; n < N; ++n)
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) yv[n * F + f] = xv[n * F + f] * wv[f];
  if (y.requires_grad())
    record([x, w, N, F, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink gx = grad_sink(x);
      const float *__restrict xv = x.value().f32(), *__restrict wv = w.value().f32(), *__restrict dy = out->grad.f32();
      add_col_sums(w, row_scale_grads(dy, xv, wv, N, F, gx.target.f32()));
      commit(x, gx);
      release(out);
    });
  return y;
}

Var addcmul_row(const Var& x, const Var& d, const Var& mu) {
  check_same(x, d, "addcmul_row");
  check_row(x, mu, "addcmul_row");
  const int64_t N = x.dim(0), F = x.dim(1);
  Var y(Tensor::empty(x.shape()), needs_grad({&x, &d, &mu}));
  const float *__restrict xv = x.value().f32(), *__restrict dv = d.value().f32(), *__restrict mv = mu.value().f32();
  float* __restrict yv = y.value().f32();
  for (int64_t n = 0; n < N; ++n)
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) yv[n * F + f] = xv[n * F + f] + dv[n * F + f] * mv[f];
  if (y.requires_grad())
    record([x, d, mu, N, F, out = y.shared()] {
      if (!out->grad.defined()) return;
      const float *__restrict dv = d.value().f32(), *__restrict mv = mu.value().f32(), *__restrict dy = out->grad.f32();
      GradSink gd = grad_sink(d);
      add_col_sums(mu, row_scale_grads(dy, dv, mv, N, F, gd.target.f32()));
      commit(d, gd);
      pass_through(x, out);  // dx = dy
      release(out);
    });
  return y;
}

Var lerp(const Var& a, const Var& b, const Var& t) {
  check_same(a, b, "lerp");
  check_same(a, t, "lerp");
  const int64_t n = a.value().numel();
  Var y(Tensor::empty(a.shape()), needs_grad({&a, &b, &t}));
  const float *__restrict av = a.value().f32(), *__restrict bv = b.value().f32(), *__restrict tv = t.value().f32();
  float* __restrict yv = y.value().f32();
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) yv[i] = av[i] + (bv[i] - av[i]) * tv[i];
  if (y.requires_grad())
    record([a, b, t, n, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink ga = grad_sink(a), gb = grad_sink(b), gt = grad_sink(t);
      const float *__restrict av = a.value().f32(), *__restrict bv = b.value().f32(), *__restrict tv = t.value().f32();
      const float* __restrict dy = out->grad.f32();
      float *__restrict da = ga.target.f32(), *__restrict db = gb.target.f32(), *__restrict dt = gt.target.f32();
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        da[i] = dy[i] * (1.0f - tv[i]);
        db[i] = dy[i] * tv[i];
        dt[i] = dy[i] * (bv[i] - av[i]);
      }
      commit(a, ga);
      commit(b, gb);
      commit(t, gt);
      release(out);
    });
  return y;
}

Var scale(const Var& x, float s) {
  const int64_t n = x.value().numel();
  Var y(Tensor::empty(x.shape()), needs_grad({&x}));
  const float* __restrict xv = x.value().f32();
  float* __restrict yv = y.value().f32();
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) yv[i] = s * xv[i];
  if (y.requires_grad())
    record([x, s, n, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(x);
      const float* __restrict dy = out->grad.f32();
      float* __restrict dx = d.target.f32();
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dx[i] = s * dy[i];
      commit(x, d);
      release(out);
    });
  return y;
}

Var token_shift(const Var& x, int64_t B, int64_t T, const Tensor& prev) {
  const int64_t F = x.dim(1);
  Var y(Tensor::empty(x.shape()), needs_grad({&x}));
  const float* __restrict xv = x.value().f32();
  const float* pv = prev.defined() ? prev.f32() : nullptr;
  float* __restrict yv = y.value().f32();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const float* __restrict xr = xv + (b * T + t) * F;
      float* __restrict yr = yv + (b * T + t) * F;
      const float* before = t > 0 ? xr - F : (pv ? pv + b * F : nullptr);
      if (before) {
#pragma omp simd
        for (int64_t f = 0; f < F; ++f) yr[f] = before[f] - xr[f];
      } else {
#pragma omp simd
        for (int64_t f = 0; f < F; ++f) yr[f] = 0.0f - xr[f];
      }
    }
  if (y.requires_grad())
    record([x, B, T, F, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(x);
      const float* __restrict dy = out->grad.f32();
      float* __restrict dx = d.target.f32();
      // x_t enters d_t with -1 and d_{t+1} with +1 (prev is a constant).
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t) {
          const int64_t i = (b * T + t) * F;
          if (t + 1 < T) {
#pragma omp simd
            for (int64_t f = 0; f < F; ++f) dx[i + f] = -dy[i + f] + dy[i + F + f];
          } else {
#pragma omp simd
            for (int64_t f = 0; f < F; ++f) dx[i + f] = -dy[i + f] + 0.0f;
          }
        }
      commit(x, d);
      release(out);
    });
  return y;
}

Var rwkv_key(const Var& k, const Var& a, const Var& ka) {
  check_same(k, a, "rwkv_key");
  check_row(k, ka, "rwkv_key");
  const int64_t N = k.dim(0), F = k.dim(1);
  Var y(Tensor::empty(k.shape()), needs_grad({&k, &a, &ka}));
  const float *__restrict kv = k.value().f32(), *__restrict av = a.value().f32(), *__restrict kav = ka.value().f32();
  float* __restrict yv = y.value().f32();
  for (int64_t n = 0; n < N; ++n)
#pragma omp simd
    for (int64_t f = 0; f < F; ++f) {
      const int64_t i = n * F + f;
      yv[i] = kv[i] * (1.0f + (av[i] - 1.0f) * kav[f]);
    }
  if (y.requires_grad())
    record([k, a, ka, N, F, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink gk = grad_sink(k), ga = grad_sink(a);
      const float *__restrict kv = k.value().f32(), *__restrict av = a.value().f32(), *__restrict kav = ka.value().f32();
      const float* __restrict dy = out->grad.f32();
      float *__restrict dk = gk.target.f32(), *__restrict da = ga.target.f32();
      std::vector<double> acc(F, 0.0);
      double* __restrict dka = acc.data();
      for (int64_t n = 0; n < N; ++n)
#pragma omp simd
        for (int64_t f = 0; f < F; ++f) {
          const int64_t i = n * F + f;
          dk[i] = dy[i] * (1.0f + (av[i] - 1.0f) * kav[f]);
          da[i] = dy[i] * kv[i] * kav[f];
          dka[f] += dy[i] * kv[i] * (av[i] - 1.0f);
        }
      add_col_sums(ka, acc);
      commit(k, gk);
      commit(a, ga);
      release(out);
    });
  return y;
}

Var group_norm_heads(const Var& x, int64_t H, const Var& w, const Var& b, float eps) {
  check_row(x, w, "group_norm_heads");
  check_row(x, b, "group_norm_heads");
  const int64_t N = x.dim(0), F = x.dim(1), P = F / H;
  SPEEDLM_ASSERT(F % H == 0, "group_norm_heads: {} columns for {} heads", F, H);
  Var y(Tensor::empty(x.shape()), needs_grad({&x, &w, &b}));
  Tensor xhat = Tensor::empty(x.shape()), rstd = Tensor::empty({N * H});
  const float *__restrict xv = x.value().f32(), *__restrict wv = w.value().f32(), *__restrict bv = b.value().f32();
  float *__restrict xh = xhat.f32(), *__restrict yv = y.value().f32(), *__restrict rs = rstd.f32();
  for (int64_t r = 0; r < N * H; ++r) {
    const float* __restrict xr = xv + r * P;
    double mean = 0.0, var = 0.0;
    for (int64_t j = 0; j < P; ++j) mean += xr[j];
    mean /= static_cast<double>(P);
    for (int64_t j = 0; j < P; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    const float s = static_cast<float>(1.0 / std::sqrt(var / static_cast<double>(P) + eps));
    rs[r] = s;
    const float *__restrict wr = wv + (r % H) * P, *__restrict br = bv + (r % H) * P;
#pragma omp simd
    for (int64_t j = 0; j < P; ++j) {
      xh[r * P + j] = static_cast<float>(xr[j] - mean) * s;
      yv[r * P + j] = xh[r * P + j] * wr[j] + br[j];
    }
  }
  if (y.requires_grad())
    record([x, w, b, xhat, rstd, N, H, P, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(x);
      const float *__restrict wv = w.value().f32(), *__restrict xh = xhat.f32(), *__restrict dy = out->grad.f32();
      const float* __restrict rs = rstd.f32();
      float* __restrict dx = d.target.f32();
      std::vector<double> dw_acc(H * P, 0.0), db_acc(H * P, 0.0);
      double *__restrict dw = dw_acc.data(), *__restrict db = db_acc.data();
      // dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy o w.
      for (int64_t r = 0; r < N * H; ++r) {
        const int64_t f0 = (r % H) * P;
        const float *__restrict dr = dy + r * P, *__restrict xr = xh + r * P, *__restrict wr = wv + f0;
        double mg = 0.0, mgx = 0.0;
        for (int64_t j = 0; j < P; ++j) {
          const double g = dr[j] * wr[j];
          mg += g;
          mgx = std::fma(g, static_cast<double>(xr[j]), mgx);  // as contracted before (see rwkv_bonus)
        }
#pragma omp simd
        for (int64_t j = 0; j < P; ++j) {
          dw[f0 + j] += dr[j] * xr[j];
          db[f0 + j] += dr[j];
        }
        mg /= static_cast<double>(P);
        mgx /= static_cast<double>(P);
#pragma omp simd
        for (int64_t j = 0; j < P; ++j) {
          const double g = dr[j] * wr[j];
          dx[r * P + j] = static_cast<float>(rs[r] * (g - mg - xr[j] * mgx));
        }
      }
      add_col_sums(w, dw_acc);
      add_col_sums(b, db_acc);
      commit(x, d);
      release(out);
    });
  return y;
}

Var rwkv_bonus(const Var& r, const Var& k, const Var& v, const Var& rk, int64_t H) {
  check_same(r, k, "rwkv_bonus");
  check_same(r, v, "rwkv_bonus");
  check_row(r, rk, "rwkv_bonus");
  const int64_t N = r.dim(0), F = r.dim(1), P = F / H;
  Var y(Tensor::empty(r.shape()), needs_grad({&r, &k, &v, &rk}));
  Tensor s = Tensor::empty({N * H});
  const float *__restrict rv = r.value().f32(), *__restrict kv = k.value().f32(), *__restrict vv = v.value().f32();
  const float* __restrict rkv = rk.value().f32();
  float *__restrict yv = y.value().f32(), *__restrict sv = s.f32();
  for (int64_t row = 0; row < N * H; ++row) {
    const float* __restrict rkr = rkv + (row % H) * P;
    float acc = 0.0f;
    for (int64_t j = 0; j < P; ++j) acc += rv[row * P + j] * kv[row * P + j] * rkr[j];
    sv[row] = acc;
#pragma omp simd
    for (int64_t j = 0; j < P; ++j) yv[row * P + j] = acc * vv[row * P + j];
  }
  if (y.requires_grad())
    record([r, k, v, rk, s, N, H, P, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink gr = grad_sink(r), gk = grad_sink(k), gv = grad_sink(v);
      const float *__restrict rv = r.value().f32(), *__restrict kv = k.value().f32(), *__restrict vv = v.value().f32();
      const float *__restrict rkv = rk.value().f32(), *__restrict dy = out->grad.f32(), *__restrict sv = s.f32();
      float *__restrict dr = gr.target.f32(), *__restrict dk = gk.target.f32(), *__restrict dv = gv.target.f32();
      std::vector<double> acc(H * P, 0.0);
      double* __restrict drk = acc.data();
      for (int64_t row = 0; row < N * H; ++row) {
        const int64_t f0 = (row % H) * P;
        float ds = 0.0f;
        // Explicit fma, as the scalar loop contracted: split from the stores, this in-order
        // reduction now vectorises and GCC would drop the contraction, changing the last bits.
        for (int64_t j = 0; j < P; ++j) ds = std::fma(dy[row * P + j], vv[row * P + j], ds);
#pragma omp simd
        for (int64_t j = 0; j < P; ++j) {
          const int64_t i = row * P + j;
          dv[i] = dy[i] * sv[row];
          dr[i] = ds * kv[i] * rkv[f0 + j];
          dk[i] = ds * rv[i] * rkv[f0 + j];
          drk[f0 + j] += static_cast<double>(ds) * rv[i] * kv[i];
        }
      }
      add_col_sums(rk, acc);
      commit(r, gr);
      commit(k, gk);
      commit(v, gv);
      release(out);
    });
  return y;
}

}  // namespace speedlm::ag
