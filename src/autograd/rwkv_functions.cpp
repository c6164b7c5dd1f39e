#include "autograd/rwkv_functions.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "autograd/grad_sink.h"

namespace speedlm::ag {

namespace {

// Adds the column sums of g [N, F] into w's gradient (w: [F]).
void add_col_sums(const Var& w, const std::vector<double>& acc) {
  if (!w.requires_grad()) return;
  float* gw = w.grad_buffer().f32();
  for (size_t f = 0; f < acc.size(); ++f) gw[f] += static_cast<float>(acc[f]);
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
  for (int64_t i = 0; i < n; ++i) y.value().f32()[i] = std::tanh(x.value().f32()[i]);
  if (y.requires_grad())
    record([x, n, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(x);
      const float *yv = out->value.f32(), *dy = out->grad.f32();
      for (int64_t i = 0; i < n; ++i) d.target.f32()[i] = dy[i] * (1.0f - yv[i] * yv[i]);
      commit(x, d);
      release(out);
    });
  return y;
}

Var add_row(const Var& x, const Var& b) {
  check_row(x, b, "add_row");
  const int64_t N = x.dim(0), F = x.dim(1);
  Var y(Tensor::empty(x.shape()), needs_grad({&x, &b}));
  for (int64_t i = 0; i < N * F; ++i) y.value().f32()[i] = x.value().f32()[i] + b.value().f32()[i % F];
  if (y.requires_grad())
    record([x, b, N, F, out = y.shared()] {
      if (!out->grad.defined()) return;
      const float* dy = out->grad.f32();
      std::vector<double> db(F, 0.0);
      for (int64_t i = 0; i < N * F; ++i) db[i % F] += dy[i];
      add_col_sums(b, db);
      if (x.requires_grad()) {
        GradSink d = grad_sink(x);
        std::memcpy(d.target.f32(), dy, sizeof(float) * N * F);
        commit(x, d);
      }
      release(out);
    });
  return y;
}

Var mul(const Var& a, const Var& b) {
  check_same(a, b, "mul");
  const int64_t n = a.value().numel();
  Var y(Tensor::empty(a.shape()), needs_grad({&a, &b}));
  for (int64_t i = 0; i < n; ++i) y.value().f32()[i] = a.value().f32()[i] * b.value().f32()[i];
  if (y.requires_grad())
    record([a, b, n, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink da = grad_sink(a), db = grad_sink(b);
      const float *av = a.value().f32(), *bv = b.value().f32(), *dy = out->grad.f32();
      for (int64_t i = 0; i < n; ++i) {
        da.target.f32()[i] = dy[i] * bv[i];
        db.target.f32()[i] = dy[i] * av[i];
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
  for (int64_t i = 0; i < N * F; ++i) y.value().f32()[i] = x.value().f32()[i] * w.value().f32()[i % F];
  if (y.requires_grad())
    record([x, w, N, F, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink dx = grad_sink(x);
      const float *xv = x.value().f32(), *wv = w.value().f32(), *dy = out->grad.f32();
      std::vector<double> dw(F, 0.0);
      for (int64_t i = 0; i < N * F; ++i) {
        dx.target.f32()[i] = dy[i] * wv[i % F];
        dw[i % F] += dy[i] * xv[i];
      }
      add_col_sums(w, dw);
      commit(x, dx);
      release(out);
    });
  return y;
}

Var addcmul_row(const Var& x, const Var& d, const Var& mu) {
  check_same(x, d, "addcmul_row");
  check_row(x, mu, "addcmul_row");
  const int64_t N = x.dim(0), F = x.dim(1);
  Var y(Tensor::empty(x.shape()), needs_grad({&x, &d, &mu}));
  for (int64_t i = 0; i < N * F; ++i)
    y.value().f32()[i] = x.value().f32()[i] + d.value().f32()[i] * mu.value().f32()[i % F];
  if (y.requires_grad())
    record([x, d, mu, N, F, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink gx = grad_sink(x), gd = grad_sink(d);
      const float *dv = d.value().f32(), *mv = mu.value().f32(), *dy = out->grad.f32();
      std::vector<double> dmu(F, 0.0);
      for (int64_t i = 0; i < N * F; ++i) {
        gx.target.f32()[i] = dy[i];
        gd.target.f32()[i] = dy[i] * mv[i % F];
        dmu[i % F] += dy[i] * dv[i];
      }
      add_col_sums(mu, dmu);
      commit(x, gx);
      commit(d, gd);
      release(out);
    });
  return y;
}

Var lerp(const Var& a, const Var& b, const Var& t) {
  check_same(a, b, "lerp");
  check_same(a, t, "lerp");
  const int64_t n = a.value().numel();
  Var y(Tensor::empty(a.shape()), needs_grad({&a, &b, &t}));
  const float *av = a.value().f32(), *bv = b.value().f32(), *tv = t.value().f32();
  for (int64_t i = 0; i < n; ++i) y.value().f32()[i] = av[i] + (bv[i] - av[i]) * tv[i];
  if (y.requires_grad())
    record([a, b, t, n, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink ga = grad_sink(a), gb = grad_sink(b), gt = grad_sink(t);
      const float *av = a.value().f32(), *bv = b.value().f32(), *tv = t.value().f32(), *dy = out->grad.f32();
      for (int64_t i = 0; i < n; ++i) {
        ga.target.f32()[i] = dy[i] * (1.0f - tv[i]);
        gb.target.f32()[i] = dy[i] * tv[i];
        gt.target.f32()[i] = dy[i] * (bv[i] - av[i]);
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
  for (int64_t i = 0; i < n; ++i) y.value().f32()[i] = s * x.value().f32()[i];
  if (y.requires_grad())
    record([x, s, n, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(x);
      for (int64_t i = 0; i < n; ++i) d.target.f32()[i] = s * out->grad.f32()[i];
      commit(x, d);
      release(out);
    });
  return y;
}

Var token_shift(const Var& x, int64_t B, int64_t T, const Tensor& prev) {
  const int64_t F = x.dim(1);
  Var y(Tensor::empty(x.shape()), needs_grad({&x}));
  const float* xv = x.value().f32();
  float* yv = y.value().f32();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const float* before = t > 0 ? xv + (b * T + t - 1) * F : (prev.defined() ? prev.f32() + b * F : nullptr);
      for (int64_t f = 0; f < F; ++f) yv[(b * T + t) * F + f] = (before ? before[f] : 0.0f) - xv[(b * T + t) * F + f];
    }
  if (y.requires_grad())
    record([x, B, T, F, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink d = grad_sink(x);
      const float* dy = out->grad.f32();
      float* dx = d.target.f32();
      // x_t enters d_t with -1 and d_{t+1} with +1 (prev is a constant).
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t f = 0; f < F; ++f) {
            const int64_t i = (b * T + t) * F + f;
            dx[i] = -dy[i] + (t + 1 < T ? dy[i + F] : 0.0f);
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
  const float *kv = k.value().f32(), *av = a.value().f32(), *kav = ka.value().f32();
  for (int64_t i = 0; i < N * F; ++i) y.value().f32()[i] = kv[i] * (1.0f + (av[i] - 1.0f) * kav[i % F]);
  if (y.requires_grad())
    record([k, a, ka, N, F, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink gk = grad_sink(k), ga = grad_sink(a);
      const float *kv = k.value().f32(), *av = a.value().f32(), *kav = ka.value().f32(), *dy = out->grad.f32();
      std::vector<double> dka(F, 0.0);
      for (int64_t i = 0; i < N * F; ++i) {
        gk.target.f32()[i] = dy[i] * (1.0f + (av[i] - 1.0f) * kav[i % F]);
        ga.target.f32()[i] = dy[i] * kv[i] * kav[i % F];
        dka[i % F] += dy[i] * kv[i] * (av[i] - 1.0f);
      }
      add_col_sums(ka, dka);
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
  const float *xv = x.value().f32(), *wv = w.value().f32(), *bv = b.value().f32();
  for (int64_t r = 0; r < N * H; ++r) {
    const float* xr = xv + r * P;
    double mean = 0.0, var = 0.0;
    for (int64_t j = 0; j < P; ++j) mean += xr[j];
    mean /= static_cast<double>(P);
    for (int64_t j = 0; j < P; ++j) var += (xr[j] - mean) * (xr[j] - mean);
    const float s = static_cast<float>(1.0 / std::sqrt(var / static_cast<double>(P) + eps));
    rstd.f32()[r] = s;
    for (int64_t j = 0; j < P; ++j) {
      const int64_t f = (r % H) * P + j;
      xhat.f32()[r * P + j] = static_cast<float>(xr[j] - mean) * s;
      y.value().f32()[r * P + j] = xhat.f32()[r * P + j] * wv[f] + bv[f];
    }
  }
  if (y.requires_grad())
    record([x, w, b, xhat, rstd, N, H, P, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink dx = grad_sink(x);
      const float *wv = w.value().f32(), *xh = xhat.f32(), *dy = out->grad.f32();
      std::vector<double> dw(H * P, 0.0), db(H * P, 0.0);
      // dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy o w.
      for (int64_t r = 0; r < N * H; ++r) {
        double mg = 0.0, mgx = 0.0;
        for (int64_t j = 0; j < P; ++j) {
          const int64_t f = (r % H) * P + j;
          const double g = dy[r * P + j] * wv[f];
          mg += g;
          mgx += g * xh[r * P + j];
          dw[f] += dy[r * P + j] * xh[r * P + j];
          db[f] += dy[r * P + j];
        }
        mg /= static_cast<double>(P);
        mgx /= static_cast<double>(P);
        for (int64_t j = 0; j < P; ++j) {
          const double g = dy[r * P + j] * wv[(r % H) * P + j];
          dx.target.f32()[r * P + j] = static_cast<float>(rstd.f32()[r] * (g - mg - xh[r * P + j] * mgx));
        }
      }
      add_col_sums(w, dw);
      add_col_sums(b, db);
      commit(x, dx);
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
  const float *rv = r.value().f32(), *kv = k.value().f32(), *vv = v.value().f32(), *rkv = rk.value().f32();
  for (int64_t row = 0; row < N * H; ++row) {
    float acc = 0.0f;
    for (int64_t j = 0; j < P; ++j) acc += rv[row * P + j] * kv[row * P + j] * rkv[(row % H) * P + j];
    s.f32()[row] = acc;
    for (int64_t j = 0; j < P; ++j) y.value().f32()[row * P + j] = acc * vv[row * P + j];
  }
  if (y.requires_grad())
    record([r, k, v, rk, s, N, H, P, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink gr = grad_sink(r), gk = grad_sink(k), gv = grad_sink(v);
      const float *rv = r.value().f32(), *kv = k.value().f32(), *vv = v.value().f32(), *rkv = rk.value().f32();
      const float* dy = out->grad.f32();
      std::vector<double> drk(H * P, 0.0);
      for (int64_t row = 0; row < N * H; ++row) {
        float ds = 0.0f;
        for (int64_t j = 0; j < P; ++j) {
          ds += dy[row * P + j] * vv[row * P + j];
          gv.target.f32()[row * P + j] = dy[row * P + j] * s.f32()[row];
        }
        for (int64_t j = 0; j < P; ++j) {
          const int64_t i = row * P + j, f = (row % H) * P + j;
          gr.target.f32()[i] = ds * kv[i] * rkv[f];
          gk.target.f32()[i] = ds * rv[i] * rkv[f];
          drk[f] += static_cast<double>(ds) * rv[i] * kv[i];
        }
      }
      add_col_sums(rk, drk);
      commit(r, gr);
      commit(k, gk);
      commit(v, gv);
      release(out);
    });
  return y;
}

}  // namespace speedlm::ag
