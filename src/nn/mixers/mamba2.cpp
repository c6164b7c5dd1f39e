#include "nn/mixers/mamba2.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "autograd/elementwise_functions.h"
#include "autograd/functions.h"
#include "autograd/grad_sink.h"
#include "autograd/recurrent_functions.h"
#include "core/parallel.h"
#include "core/simd_math.h"
#include "io/json_fields.h"
#include "nn/init.h"
#include "nn/mixers/recurrent_common.h"

namespace speedlm::nn {

Result<Mamba2MixerParams> Mamba2MixerParams::parse(const nlohmann::json& cfg, const std::string& path,
                                                   int64_t d_model) {
  Mamba2MixerParams p;
  JsonFields f(cfg, path);
  std::string type;
  SPEEDLM_TRY(f.get_string("type", type, {"mamba2"}, true));
  SPEEDLM_TRY(f.get_int("head_dim", p.head_dim, 1, 1024));
  SPEEDLM_TRY(f.get_int("state_dim", p.state_dim, 1, 1024));
  SPEEDLM_TRY(f.get_int("expand", p.expand, 1, 16));
  SPEEDLM_TRY(f.get_int("groups", p.groups, 1, 1024));
  SPEEDLM_TRY(f.get_int("conv", p.conv, 2, 8));
  SPEEDLM_TRY(f.get_int("chunk", p.chunk, 16, 1024));
  SPEEDLM_TRY(f.get_float("dt_min", p.dt_min, 1e-6, 10.0));
  SPEEDLM_TRY(f.get_float("dt_max", p.dt_max, p.dt_min, 10.0));
  p.inner = p.expand * d_model;
  if (p.inner % p.head_dim != 0)
    return f.error("head_dim", fmt::format(" = {}: must divide expand * d_model ({})", p.head_dim, p.inner));
  p.heads = p.inner / p.head_dim;
  if (p.heads % p.groups != 0)
    return f.error("groups", fmt::format(" = {}: must divide the number of heads ({})", p.groups, p.heads));
  SPEEDLM_TRY(f.finish());
  return p;
}

namespace {

// The SSD inputs of simple_gla from the block's tensors (algorithms.md §8.3).
//   x: [N, H*P]  Bm, Cm: [N, G*S]  dt_raw: [N, H]  ->  q = C, k = B per head: [N, H*S],
//   v = dt x: [N, H*P], g = dt A: [N, H], dt: [N, H]
struct SsdInputs {
  Tensor q, k, v, g, dt;
};

// A = -exp(A_log) per head.
std::vector<float> decay_rates(const Tensor& a_log) {
  std::vector<float> A(a_log.numel());
  for (size_t h = 0; h < A.size(); ++h) A[h] = -std::exp(a_log.f32()[h]);
  return A;
}

SsdInputs ssd_inputs(const Mamba2MixerParams& p, const Tensor& x, const Tensor& Bm, const Tensor& Cm,
                     const Tensor& dt_raw, const Tensor& dt_bias, const Tensor& a_log) {
  const int64_t N = x.dim(0), H = p.heads, P = p.head_dim, S = p.state_dim, G = p.groups, per = H / G;
  SsdInputs r{Tensor::empty({N, H * S}), Tensor::empty({N, H * S}), Tensor::empty({N, H * P}),
              Tensor::empty({N, H}), Tensor::empty({N, H})};
  const std::vector<float> A = decay_rates(a_log);
  const float *xv = x.f32(), *Bv = Bm.f32(), *Cv = Cm.f32(), *raw = dt_raw.f32(), *bias = dt_bias.f32();
  float *q = r.q.f32(), *k = r.k.f32(), *v = r.v.f32(), *g = r.g.f32(), *dt = r.dt.f32();
  parallel_for(N, 64, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t h = 0; h < H; ++h) {
        dt[n * H + h] = softplus_f32(raw[n * H + h] + bias[h]);
        g[n * H + h] = dt[n * H + h] * A[h];
      }
      for (int64_t h = 0; h < H; ++h) {
        const int64_t row = n * H + h, grp = h / per;
        std::memcpy(q + row * S, Cv + (n * G + grp) * S, sizeof(float) * S);
        std::memcpy(k + row * S, Bv + (n * G + grp) * S, sizeof(float) * S);
        for (int64_t j = 0; j < P; ++j) v[row * P + j] = dt[row] * xv[row * P + j];
      }
    }
  });
  return r;
}

// y += D x with D per head: x, y [N, H*P].
void add_skip(int64_t N, int64_t H, int64_t P, const float* D, const float* x, float* y) {
  for (int64_t row = 0; row < N * H; ++row)
    for (int64_t j = 0; j < P; ++j) y[row * P + j] += D[row % H] * x[row * P + j];
}

// y = ssd(x, B, C, dt) + D x as one autograd node. Backward (algorithms.md §8.3): through
// simple_gla to dq, dk, dv, dg, then dC/dB sum dq/dk over the heads of a group,
// dx = dt dv + D dy, ddt = A dg + <x, dv>, dA_log = A sum dt dg, d dt_raw = ddt sigmoid(u),
// ddt_bias = sum d dt_raw, dD = sum <x, dy>.
ag::Var ssd(const Mamba2MixerParams& p, int64_t B, int64_t T, const ag::Var& x, const ag::Var& Bm,
            const ag::Var& Cm, const ag::Var& dt_raw, const ag::Var& dt_bias, const ag::Var& a_log,
            const ag::Var& d_skip) {
  const int64_t N = B * T, H = p.heads, P = p.head_dim, S = p.state_dim, G = p.groups;
  SsdInputs in = ssd_inputs(p, x.value(), Bm.value(), Cm.value(), dt_raw.value(), dt_bias.value(), a_log.value());
  const ops::SimpleGlaDims d{B, T, H, S, P};
  const ops::SimpleGlaParams op{1.0f, p.chunk};
  ag::Var y(Tensor::empty({N, H * P}), ag::needs_grad({&x, &Bm, &Cm, &dt_raw, &dt_bias, &a_log, &d_skip}));
  float* yv = y.value().f32();
  ops::simple_gla_chunk_fwd(op, d, in.q.f32(), in.k.f32(), in.v.f32(), in.g.f32(), nullptr, yv, nullptr);
  add_skip(N, H, P, d_skip.value().f32(), x.value().f32(), yv);
  if (!y.requires_grad()) return y;
  ag::record([=, out = y.shared()] {
    if (!out->grad.defined()) return;
    const float* dy = out->grad.f32();
    Tensor dq = Tensor::empty({N, H * S}), dk = Tensor::empty({N, H * S}), dv = Tensor::empty({N, H * P}),
           dg = Tensor::empty({N, H});
    ops::simple_gla_chunk_bwd(op, d, in.q.f32(), in.k.f32(), in.v.f32(), in.g.f32(), nullptr, dy, nullptr, dq.f32(),
                              dk.f32(), dv.f32(), dg.f32(), nullptr);
    ag::GradSink gx = ag::grad_sink(x), gB = ag::grad_sink(Bm), gC = ag::grad_sink(Cm), gdt = ag::grad_sink(dt_raw);
    gB.target.zero();
    gC.target.zero();
    const float *xv = x.value().f32(), *dtv = in.dt.f32(), *Dv = d_skip.value().f32(), *dqv = dq.f32(),
                *dkv = dk.f32(), *dvv = dv.f32(), *dgv = dg.f32(), *raw = dt_raw.value().f32(),
                *bias = dt_bias.value().f32();
    float *gxv = gx.target.f32(), *gBv = gB.target.f32(), *gCv = gC.target.f32(), *gdtv = gdt.target.f32();
    const std::vector<float> A = decay_rates(a_log.value());
    std::vector<double> dA(H, 0.0), dD(H, 0.0), dbias(H, 0.0);
    const int64_t per = H / G;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t row = n * H + h;
        float xdv = 0.0f, xdy = 0.0f;
        for (int64_t j = 0; j < P; ++j) {
          const int64_t i = row * P + j;
          xdv += xv[i] * dvv[i];
          xdy += xv[i] * dy[i];
          gxv[i] = dtv[row] * dvv[i] + Dv[h] * dy[i];
        }
        const float ddt = A[h] * dgv[row] + xdv;
        const float u = raw[row] + bias[h];
        const float draw = u > 20.0f ? ddt : ddt * sigmoid_f32(u);
        gdtv[row] = draw;
        dbias[h] += draw;
        dA[h] += static_cast<double>(dtv[row]) * dgv[row] * A[h];
        dD[h] += xdy;
        float *gCr = gCv + (n * G + h / per) * S, *gBr = gBv + (n * G + h / per) * S;
        for (int64_t j = 0; j < S; ++j) {
          gCr[j] += dqv[row * S + j];
          gBr[j] += dkv[row * S + j];
        }
      }
    ag::commit(x, gx);
    ag::commit(Bm, gB);
    ag::commit(Cm, gC);
    ag::commit(dt_raw, gdt);
    for (int64_t h = 0; h < H; ++h) {
      if (dt_bias.requires_grad()) dt_bias.grad_buffer().f32()[h] += static_cast<float>(dbias[h]);
      if (a_log.requires_grad()) a_log.grad_buffer().f32()[h] += static_cast<float>(dA[h]);
      if (d_skip.requires_grad()) d_skip.grad_buffer().f32()[h] += static_cast<float>(dD[h]);
    }
    ag::release(out);
  });
  return y;
}

// Inference: the same SSD continuing from the state's "ssm" [B, H, S, P] (k = B rows, v = x columns).
Tensor ssd_with_state(const Mamba2MixerParams& p, int64_t B, int64_t T, const Tensor& x, const Tensor& Bm,
                      const Tensor& Cm, const Tensor& dt_raw, const Tensor& dt_bias, const Tensor& a_log,
                      const Tensor& d_skip, Tensor& ssm) {
  const int64_t H = p.heads, P = p.head_dim;
  SsdInputs in = ssd_inputs(p, x, Bm, Cm, dt_raw, dt_bias, a_log);
  Tensor y = simple_gla_with_state(in.q, in.k, in.v, in.g.f32(), {B, T, H, p.state_dim, P}, {1.0f, p.chunk}, ssm);
  add_skip(B * T, H, P, d_skip.f32(), x.f32(), y.f32());
  return y;
}

}  // namespace

Mamba2Mixer::Mamba2Mixer(const Mamba2MixerParams& p, int64_t d_model) : p_(p), d_model_(d_model) {
  const int64_t E = p.inner, GN = p.groups * p.state_dim, H = p.heads;
  w_in_ = ag::Var(Tensor::zeros({2 * E + 2 * GN + H, d_model}), true);
  conv_w_ = ag::Var(Tensor::zeros({E + 2 * GN, p.conv}), true);
  conv_b_ = ag::Var(Tensor::zeros({E + 2 * GN}), true);
  dt_bias_ = ag::Var(Tensor::zeros({H}), true);
  a_log_ = ag::Var(Tensor::zeros({H}), true);
  d_skip_ = ag::Var(Tensor::full({H}, 1.0f), true);
  norm_ = ag::Var(Tensor::full({E}, 1.0f), true);
  w_out_ = ag::Var(Tensor::zeros({d_model, E}), true);
}

void Mamba2Mixer::collect_params(const std::string& prefix, ParamList& out) {
  out.push_back({prefix + "w_in", &w_in_, true});
  out.push_back({prefix + "conv.weight", &conv_w_, false});
  out.push_back({prefix + "conv.bias", &conv_b_, false});
  out.push_back({prefix + "dt_bias", &dt_bias_, false});
  out.push_back({prefix + "A_log", &a_log_, false});
  out.push_back({prefix + "D", &d_skip_, false});
  out.push_back({prefix + "norm.weight", &norm_, false});
  out.push_back({prefix + "w_out", &w_out_, true});
}

void Mamba2Mixer::init(const InitSpec& spec, uint64_t seed) {
  init_normal(w_in_.value(), spec.std, seed, 0);
  init_normal(conv_w_.value(), 1.0 / std::sqrt(static_cast<double>(p_.conv)), seed, 1);
  init_normal(w_out_.value(), spec.out_std, seed, 2);
  conv_b_.value().zero();
  // dt log-uniform in [dt_min, dt_max], stored as softplus^-1 in dt_bias; A = -[1, 16] uniform.
  Rng rng(seed, 3);
  for (int64_t h = 0; h < p_.heads; ++h) {
    const double dt = std::exp(std::log(p_.dt_min) + rng.uniform() * (std::log(p_.dt_max) - std::log(p_.dt_min)));
    dt_bias_.value().f32()[h] = static_cast<float>(dt + std::log(-std::expm1(-dt)));
    a_log_.value().f32()[h] = static_cast<float>(std::log(1.0 + 15.0 * rng.uniform()));
  }
  d_skip_.value().fill(1.0f);
  norm_.value().fill(1.0f);
}

ag::Var Mamba2Mixer::forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) {
  const int64_t E = p_.inner, GN = p_.groups * p_.state_dim, H = p_.heads;
  std::vector<ag::Var> zxd = ag::split_cols(ag::linear(x, w_in_), {E, E + 2 * GN, H});
  const ops::CausalConv1dDims cd{B, T, E + 2 * GN, p_.conv};
  RecurrentState* rs = static_cast<RecurrentState*>(state);
  SPEEDLM_ASSERT(!rs || !ag::grad_enabled() || !x.requires_grad(), "mamba2 with a state is inference only");
  ag::Var xbc = rs ? ag::Var(conv_with_state(zxd[1].value(), conv_w_.value(), conv_b_.value(), cd, {true},
                                             rs->get("conv")))
                   : ag::causal_conv1d(zxd[1], conv_w_, conv_b_, cd, {true});
  std::vector<ag::Var> xs = ag::split_cols(xbc, {E, GN, GN});
  ag::Var y;
  if (rs) {
    y = ag::Var(ssd_with_state(p_, B, T, xs[0].value(), xs[1].value(), xs[2].value(), zxd[2].value(),
                               dt_bias_.value(), a_log_.value(), d_skip_.value(), rs->get("ssm")));
    rs->advance(T);
  } else {
    y = ssd(p_, B, T, xs[0], xs[1], xs[2], zxd[2], dt_bias_, a_log_, d_skip_);
  }
  return ag::linear(ag::rmsnorm(ag::mul_silu(y, zxd[0]), norm_, 1e-5f), w_out_);
}

Tensor Mamba2Mixer::step(const Tensor& x, MixerState& state) {
  ag::NoGradGuard guard;
  return forward(ag::Var(x), x.dim(0), 1, &state).value();
}

std::unique_ptr<MixerState> Mamba2Mixer::make_state(int64_t batch) const {
  auto s = std::make_unique<RecurrentState>();
  s->add("ssm", {batch, p_.heads, p_.state_dim, p_.head_dim});
  s->add("conv", {batch, p_.conv - 1, p_.inner + 2 * p_.groups * p_.state_dim});
  return s;
}

}  // namespace speedlm::nn
