#include "nn/mixers/mla_parts.h"

#include <cstring>

#include "core/parallel.h"
#include "ops/attention/attention/attention.h"
#include "ops/linalg/gemm/gemm.h"

namespace speedlm::nn {

namespace {

// Adds src [N, w] (row stride lds) into columns [col, col + w) of dst's gradient [N, ldd].
void add_cols(const ag::Var& dst, int64_t col, const float* src, int64_t lds, int64_t N, int64_t w) {
  float* g = dst.grad_buffer().f32();
  const int64_t ldd = dst.dim(1);
  parallel_for(N, 256, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
#pragma omp simd
      for (int64_t c = 0; c < w; ++c) g[n * ldd + col + c] += src[n * lds + c];
    }
  });
}

// Copies columns [col, col + w) of src [N, lds] into dst [N, w].
void take_cols(const float* src, int64_t lds, int64_t col, int64_t N, int64_t w, float* dst) {
  for (int64_t n = 0; n < N; ++n) std::memcpy(dst + n * w, src + n * lds + col, sizeof(float) * w);
}

}  // namespace

void mla_rope_q(const MlaDims& d, const Tensor& pos, const ops::RopeParams& rope, float* q, bool backward) {
  const int64_t row = d.H * d.Dq();
  for (int64_t h = 0; h < d.H; ++h) {
    float* pe = q + h * d.Dq() + d.Dn;
    if (backward) ops::rope_fast_bwd_rows(rope, pe, row, pos.i32(), d.B, d.T, 1, d.Dr, pe, row);
    else ops::rope_fast_fwd_rows(rope, pe, row, pos.i32(), d.B, d.T, 1, d.Dr, pe, row);
  }
}

Latent mla_split_latent(const ag::Var& kvr, const Tensor& pos, const MlaDims& d, const ops::RopeParams& rope) {
  const int64_t N = d.N(), W = d.C + d.Dr;
  SPEEDLM_ASSERT(kvr.dim(0) == N && kvr.dim(1) == W, "mla_split_latent: {} for N={} W={}", shape_str(kvr.shape()), N, W);
  const bool rg = ag::needs_grad({&kvr});
  Latent r{ag::Var(Tensor::empty({N, d.C}), rg), ag::Var(Tensor::empty({N, d.Dr}), rg)};
  take_cols(kvr.value().f32(), W, 0, N, d.C, r.c_raw.value().f32());
  take_cols(kvr.value().f32(), W, d.C, N, d.Dr, r.k_pe.value().f32());
  ops::rope_fast_fwd(rope, r.k_pe.value().f32(), pos.i32(), d.B, d.T, 1, d.Dr, r.k_pe.value().f32());
  if (rg) {
    ag::record([kvr, pos, d, rope, c = r.c_raw.shared(), k = r.k_pe.shared(), N, W] {
      if (c->grad.defined()) add_cols(kvr, 0, c->grad.f32(), d.C, N, d.C);
      if (k->grad.defined()) {
        Tensor g = Tensor::empty({N, d.Dr});
        ops::rope_fast_bwd(rope, k->grad.f32(), pos.i32(), d.B, d.T, 1, d.Dr, g.f32());
        add_cols(kvr, d.C, g.f32(), d.Dr, N, d.Dr);
      }
      c->grad = Tensor(), k->grad = Tensor();
    });
  }
  return r;
}

MlaHeads mla_expand(const ag::Var& q, const ag::Var& kv, const ag::Var& k_pe, const Tensor& pos, const MlaDims& d,
                    const ops::RopeParams& rope) {
  const int64_t N = d.N(), H = d.H, Dn = d.Dn, Dr = d.Dr, Dv = d.Dv, Dq = d.Dq(), Wkv = H * (Dn + Dv);
  SPEEDLM_ASSERT(q.dim(1) == H * Dq && kv.dim(1) == Wkv && k_pe.dim(1) == Dr, "mla_expand: widths {} {} {}", q.dim(1),
                 kv.dim(1), k_pe.dim(1));
  const bool rg = ag::needs_grad({&q, &kv, &k_pe});
  MlaHeads r{ag::Var(Tensor::empty({N, H * Dq}), rg), ag::Var(Tensor::empty({N, H * Dq}), rg),
             ag::Var(Tensor::zeros({N, H * Dq}), rg)};
  const float *qs = q.value().f32(), *kvs = kv.value().f32(), *kp = k_pe.value().f32();
  float *qo = r.q.value().f32(), *ko = r.k.value().f32(), *vo = r.v.value().f32();
  parallel_for(N, 64, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t h = 0; h < H; ++h) {
        const float* kvh = kvs + n * Wkv + h * (Dn + Dv);
        std::memcpy(ko + (n * H + h) * Dq, kvh, sizeof(float) * Dn);
        std::memcpy(ko + (n * H + h) * Dq + Dn, kp + n * Dr, sizeof(float) * Dr);
        std::memcpy(vo + (n * H + h) * Dq, kvh + Dn, sizeof(float) * Dv);
      }
  });
  std::memcpy(qo, qs, sizeof(float) * N * H * Dq);
  mla_rope_q(d, pos, rope, qo, false);
  if (rg) {
    ag::record([q, kv, k_pe, pos, d, rope, qv = r.q.shared(), kvv = r.k.shared(), vv = r.v.shared()] {
      const int64_t N = d.N(), H = d.H, Dn = d.Dn, Dr = d.Dr, Dv = d.Dv, Dq = d.Dq();
      if (qv->grad.defined() && q.requires_grad()) {
        mla_rope_q(d, pos, rope, qv->grad.f32(), true);
        add_cols(q, 0, qv->grad.f32(), H * Dq, N, H * Dq);  // q's layout is the expanded one
      }
      if (kv.requires_grad())
        for (int64_t h = 0; h < H; ++h) {
          if (kvv->grad.defined()) add_cols(kv, h * (Dn + Dv), kvv->grad.f32() + h * Dq, H * Dq, N, Dn);
          if (vv->grad.defined()) add_cols(kv, h * (Dn + Dv) + Dn, vv->grad.f32() + h * Dq, H * Dq, N, Dv);
        }
      if (kvv->grad.defined() && k_pe.requires_grad()) {
        // k_pe is shared by every head: its gradient is the sum over heads.
        Tensor g = Tensor::zeros({N, Dr});
        for (int64_t n = 0; n < N; ++n)
          for (int64_t h = 0; h < H; ++h) {
            const float* src = kvv->grad.f32() + (n * H + h) * Dq + Dn;
#pragma omp simd
            for (int64_t c = 0; c < Dr; ++c) g.f32()[n * Dr + c] += src[c];
          }
        add_cols(k_pe, 0, g.f32(), Dr, N, Dr);
      }
      qv->grad = Tensor(), kvv->grad = Tensor(), vv->grad = Tensor();
    });
  }
  return r;
}

ag::Var mla_take_v(const ag::Var& o, const MlaDims& d) {
  const int64_t N = d.N(), H = d.H, Dq = d.Dq(), Dv = d.Dv;
  ag::Var y(Tensor::empty({N, H * Dv}), ag::needs_grad({&o}));
  for (int64_t h = 0; h < H; ++h)
    for (int64_t n = 0; n < N; ++n)
      std::memcpy(y.value().f32() + (n * H + h) * Dv, o.value().f32() + (n * H + h) * Dq, sizeof(float) * Dv);
  if (y.requires_grad()) {
    ag::record([o, d, out = y.shared()] {
      if (!out->grad.defined()) return;
      for (int64_t h = 0; h < d.H; ++h)
        add_cols(o, h * d.Dq(), out->grad.f32() + h * d.Dv, d.H * d.Dv, d.N(), d.Dv);
      out->grad = Tensor();
    });
  }
  return y;
}

void mla_absorbed_attention(const MlaDims& d, int64_t Tk, float scale, const float* q, const float* rows,
                            const float* w_ukv, float* out) {
  const int64_t T = d.T, H = d.H, C = d.C, Dn = d.Dn, Dr = d.Dr, Dv = d.Dv, Dq = d.Dq(), W = C + Dr;
  // q~ = [W_UK^h^T q_nope_h | q_pe_h] per head: [T, H, C + Dr]. W_UK^h is rows [h (Dn + Dv), + Dn) of w_ukv.
  Tensor qa = Tensor::empty({T, H * W}), lat = Tensor::empty({T, H * W}), lse = Tensor::empty({H, T});
  for (int64_t h = 0; h < H; ++h) {
    ops::gemm(false, false, T, C, Dn, 1.0f, q + h * Dq, H * Dq, w_ukv + h * (Dn + Dv) * C, C, 0.0f,
              qa.f32() + h * W, H * W);
    for (int64_t t = 0; t < T; ++t)
      std::memcpy(qa.f32() + (t * H + h) * W + C, q + (t * H + h) * Dq + Dn, sizeof(float) * Dr);
  }
  // MQA with one shared key [c | k_pe] of width C + Dr. The value is c; passing the same rows as
  // values makes the last Dr output columns sum_s p_s k_pe_s, which are dropped below: no copy.
  ops::AttentionParams ap;
  ap.scale = scale;
  ops::attention_plain_fwd(ap, ops::AttentionDims{1, T, Tk, H, 1, W}, qa.f32(), rows, rows, lat.f32(), lse.f32());
  // o_h = W_UV^h o_lat_h, W_UV^h = rows [h (Dn + Dv) + Dn, + Dv) of w_ukv: [Dv, C].
  for (int64_t h = 0; h < H; ++h)
    ops::gemm(false, true, T, Dv, C, 1.0f, lat.f32() + h * W, H * W, w_ukv + (h * (Dn + Dv) + Dn) * C, C, 0.0f,
              out + h * Dv, H * Dv);
}

}  // namespace speedlm::nn
