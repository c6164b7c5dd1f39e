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

Var gated_delta_rule(const Var& q, const Var& k, const Var& v, const Var& beta, const Var& g,
                     const ops::GatedDeltaRuleDims& d, const ops::GatedDeltaRuleParams& p) {
  const bool gated = g.defined();
  Var o(Tensor::empty({d.B * d.T, d.H * d.V}),
        gated ? needs_grad({&q, &k, &v, &beta, &g}) : needs_grad({&q, &k, &v, &beta}));
  Tensor ht = Tensor::empty({d.B, d.H, d.K, d.V});  // the op always writes the final state
  ops::gated_delta_rule_chunk_fwd(p, d, q.value().f32(), k.value().f32(), v.value().f32(), beta.value().f32(),
                                  gated ? g.value().f32() : nullptr, nullptr, o.value().f32(), ht.f32());
  if (o.requires_grad())
    record([q, k, v, beta, g, d, p, gated, out = o.shared()] {
      if (!out->grad.defined()) return;
      GradSink dq = grad_sink(q), dk = grad_sink(k), dv = grad_sink(v), db = grad_sink(beta);
      GradSink dg = gated ? grad_sink(g) : GradSink{};
      ops::gated_delta_rule_chunk_bwd(
          p, d, q.value().f32(), k.value().f32(), v.value().f32(), beta.value().f32(),
          gated ? g.value().f32() : nullptr, nullptr, out->grad.f32(), nullptr,
          {dq.target.f32(), dk.target.f32(), dv.target.f32(), db.target.f32(), gated ? dg.target.f32() : nullptr,
           nullptr});
      commit(q, dq);
      commit(k, dk);
      commit(v, dv);
      commit(beta, db);
      if (gated) commit(g, dg);
      release(out);
    });
  return o;
}

Var selective_scan(const Var& u, const Var& delta, const Var& A, const Var& Bm, const Var& Cm, const Var& Dskip,
                   const ops::SelectiveScanDims& d, const ops::SelectiveScanParams& p) {
  Var y(Tensor::empty({d.B * d.T, d.D}), needs_grad({&u, &delta, &A, &Bm, &Cm, &Dskip}));
  Tensor ht = Tensor::empty({d.B, d.D, d.N});  // the op always writes the final state
  // The forward's state checkpoints spare the backward a recompute pass.
  Tensor ckpt = y.requires_grad() ? Tensor::empty({ops::selective_scan_chunk_ckpt_floats(p, d)}) : Tensor();
  ops::selective_scan_chunk_fwd_ckpt(p, d, u.value().f32(), delta.value().f32(), A.value().f32(),
                                     Bm.value().f32(), Cm.value().f32(), Dskip.value().f32(), nullptr,
                                     y.value().f32(), ht.f32(), ckpt.defined() ? ckpt.f32() : nullptr);
  if (y.requires_grad())
    record([u, delta, A, Bm, Cm, Dskip, d, p, ckpt, out = y.shared()] {
      if (!out->grad.defined()) return;
      GradSink du = grad_sink(u), dd = grad_sink(delta), dA = grad_sink(A), dB = grad_sink(Bm), dC = grad_sink(Cm),
               dD = grad_sink(Dskip);
      ops::selective_scan_chunk_bwd_ckpt(p, d, u.value().f32(), delta.value().f32(), A.value().f32(),
                                         Bm.value().f32(), Cm.value().f32(), Dskip.value().f32(), nullptr,
                                         out->grad.f32(), nullptr,
                                         {du.target.f32(), dd.target.f32(), dA.target.f32(), dB.target.f32(),
                                          dC.target.f32(), dD.target.f32(), nullptr},
                                         ckpt.f32());
      commit(u, du);
      commit(delta, dd);
      commit(A, dA);
      commit(Bm, dB);
      commit(Cm, dC);
      commit(Dskip, dD);
      release(out);
    });
  return y;
}

Var rwkv7(const Var& q, const Var& w, const Var& k, const Var& v, const Var& a, const Var& b,
          const ops::Rwkv7Dims& d, const ops::Rwkv7Params& p) {
  Var o(Tensor::empty({d.B * d.T, d.H * d.V}), needs_grad({&q, &w, &k, &v, &a, &b}));
  Tensor ht = Tensor::empty({d.B, d.H, d.K, d.V});  // the op always writes the final state
  ops::rwkv7_chunk_fwd(p, d, q.value().f32(), w.value().f32(), k.value().f32(), v.value().f32(), a.value().f32(),
                       b.value().f32(), nullptr, o.value().f32(), ht.f32());
  if (o.requires_grad())
    record([q, w, k, v, a, b, d, p, out = o.shared()] {
      if (!out->grad.defined()) return;
      GradSink dq = grad_sink(q), dw = grad_sink(w), dk = grad_sink(k), dv = grad_sink(v), da = grad_sink(a),
               db = grad_sink(b);
      ops::rwkv7_chunk_bwd(p, d, q.value().f32(), w.value().f32(), k.value().f32(), v.value().f32(), a.value().f32(),
                           b.value().f32(), nullptr, out->grad.f32(), nullptr,
                           {dq.target.f32(), dw.target.f32(), dk.target.f32(), dv.target.f32(), da.target.f32(),
                            db.target.f32(), nullptr});
      commit(q, dq);
      commit(w, dw);
      commit(k, dk);
      commit(v, dv);
      commit(a, da);
      commit(b, db);
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
