#include "autograd/recurrent_functions.h"

#include "autograd/grad_sink.h"

namespace speedlm::ag {

Var simple_gla(const Var& q, const Var& k, const Var& v, const Var& g, const ops::SimpleGlaDims& d,
               const ops::SimpleGlaParams& p) {
  const bool gated = g.defined();
  Var o(Tensor::empty({d.B * d.T, d.H * d.V}), gated ? needs_grad({&q, &k, &v, &g}) : needs_grad({&q, &k, &v}));
  ops::simple_gla_chunk_fwd(p, d, q.value().f32(), k.value().f32(), v.value().f32(),
                            gated ? g.value().f32() : nullptr, nullptr, o.value().f32(), nullptr);
  if (o.requires_grad())
    record([q, k, v, g, d, p, gated, out = o.shared()] {
      if (!out->grad.defined()) return;
      GradSink dq = grad_sink(q), dk = grad_sink(k), dv = grad_sink(v);
      GradSink dg = gated ? grad_sink(g) : GradSink{};
      ops::simple_gla_chunk_bwd(p, d, q.value().f32(), k.value().f32(), v.value().f32(),
                                gated ? g.value().f32() : nullptr, nullptr, out->grad.f32(), nullptr, dq.target.f32(),
                                dk.target.f32(), dv.target.f32(), gated ? dg.target.f32() : nullptr, nullptr);
      commit(q, dq);
      commit(k, dk);
      commit(v, dv);
      if (gated) commit(g, dg);
      release(out);
    });
  return o;
}

Var gla(const Var& q, const Var& k, const Var& v, const Var& g, const ops::GlaDims& d, const ops::GlaParams& p) {
  Var o(Tensor::empty({d.B * d.T, d.H * d.V}), needs_grad({&q, &k, &v, &g}));
  ops::gla_chunk_fwd(p, d, q.value().f32(), k.value().f32(), v.value().f32(), g.value().f32(), nullptr,
                     o.value().f32(), nullptr);
  if (o.requires_grad())
    record([q, k, v, g, d, p, out = o.shared()] {
      if (!out->grad.defined()) return;
      GradSink dq = grad_sink(q), dk = grad_sink(k), dv = grad_sink(v), dg = grad_sink(g);
      ops::gla_chunk_bwd(p, d, q.value().f32(), k.value().f32(), v.value().f32(), g.value().f32(), nullptr,
                         out->grad.f32(), nullptr, dq.target.f32(), dk.target.f32(), dv.target.f32(),
                         dg.target.f32(), nullptr);
      commit(q, dq);
      commit(k, dk);
      commit(v, dv);
      commit(g, dg);
      release(out);
    });
  return o;
}

Var causal_conv1d(const Var& x, const Var& w, const Var& bias, const ops::CausalConv1dDims& d,
                  const ops::CausalConv1dParams& p) {
  Var y(Tensor::empty(x.shape()), needs_grad({&x, &w, &bias}));
  ops::causal_conv1d_fast_fwd(p, d, x.value().f32(), w.value().f32(), bias.value().f32(), nullptr, y.value().f32());
  if (y.requires_grad())
    record([x, w, bias, d, p, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink dx = grad_sink(x), dw = grad_sink(w), db = grad_sink(bias);
      ops::causal_conv1d_fast_bwd(p, d, x.value().f32(), w.value().f32(), bias.value().f32(), nullptr,
                                  out->grad.f32(), dx.target.f32(), dw.target.f32(), db.target.f32(), nullptr);
      commit(x, dx);
      commit(w, dw);
      commit(bias, db);
      release(out);
    });
  return y;
}

}  // namespace speedlm::ag
