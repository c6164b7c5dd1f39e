#include "ops/linear/gla/gla.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

// Inputs q, k, v, g, h0; outputs o, ht. Gates are uniform in [g_lo, g_hi) (log space).
OpCase gla_case(const GlaDims& d, int64_t chunk, double g_lo = -1.0, double g_hi = 0.0,
                       bool extreme = false) {
  GlaParams p;
  p.chunk = chunk;
  OpCase c;
  c.label = fmt::format("B={} T={} H={} K={} V={} chunk={} g~U[{},{})", d.B, d.T, d.H, d.K, d.V, chunk, g_lo, g_hi);
  const Shape ks{d.B, d.T, d.H, d.K}, vs{d.B, d.T, d.H, d.V}, gs{d.B, d.T, d.H, d.K}, ss{d.B, d.H, d.K, d.V};
  c.inputs = {{"q", ks}, {"k", ks}, {"v", vs}, {"g", gs, InputSpec::Kind::Uniform, g_lo, g_hi}, {"h0", ss}};
  c.extreme = extreme;
  c.ref_fwd = [=](const DBufs& in) {
    DBuf o(vs), ht(ss);
    gla_ref_fwd<double>(p, d, in[0].v.data(), in[1].v.data(), in[2].v.data(), in[3].v.data(),
                               in[4].v.data(), o.v.data(), ht.v.data());
    return DBufs{o, ht};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBuf dq(ks), dk(ks), dv(vs), dg(gs), dh0(ss);
    gla_ref_bwd<double>(p, d, in[0].v.data(), in[1].v.data(), in[2].v.data(), in[3].v.data(),
                               in[4].v.data(), dout[0].v.data(), dout[1].v.data(), dq.v.data(), dk.v.data(),
                               dv.v.data(), dg.v.data(), dh0.v.data());
    return DBufs{dq, dk, dv, dg, dh0};
  };
  auto grads = [=](const Tensors& in, const Tensors& dout, auto bwd) {
    Tensor dq = Tensor::empty(ks), dk = Tensor::empty(ks), dv = Tensor::empty(vs), dg = Tensor::empty(gs),
           dh0 = Tensor::empty(ss);
    bwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(), in[4].f32(), dout[0].f32(),
        dout[1].f32(), dq.f32(), dk.f32(), dv.f32(), dg.f32(), dh0.f32());
    return Tensors{dq, dk, dv, dg, dh0};
  };
  OpForm chunk_form{"chunk", nullptr, nullptr};
  chunk_form.fwd = [=](const Tensors& in) {
    Tensor o = Tensor::empty(vs), ht = Tensor::empty(ss);
    gla_chunk_fwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(), in[4].f32(),
                         o.f32(), ht.f32());
    return Tensors{o, ht};
  };
  chunk_form.bwd = [=](const Tensors& in, const Tensors& dout) { return grads(in, dout, gla_chunk_bwd); };
  OpForm step_form{"step", nullptr, nullptr};
  step_form.fwd = [=](const Tensors& in) {
    Tensor o = Tensor::empty(vs), ht = in[4].clone();
    gla_step_fwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(), ht.f32(), o.f32());
    return Tensors{o, ht};
  };
  step_form.bwd = [=](const Tensors& in, const Tensors& dout) { return grads(in, dout, gla_step_bwd); };
  c.forms = {chunk_form, step_form};
  return c;
}

}  // namespace

OpEntry gla_registry_entry() {
  OpEntry e;
  e.name = "gla";
  // The weighted output sums are O(30): a 1e-6 step leaves ~1e-9 of rounding in each finite
  // difference, the size of the true gradients of h0 and g under strong decay. The outputs are
  // linear in q, v, h0 and smooth in g, so a 1e-4 step costs ~1e-8 relative truncation error.
  e.fd_eps = 1e-4;
  e.cases = [] {
    using D = GlaDims;
    std::vector<OpCase> cases;
    cases.push_back(gla_case(D{.B = 2, .T = 1, .H = 2, .K = 8, .V = 8}, 64));
    cases.push_back(gla_case(D{.B = 1, .T = 63, .H = 2, .K = 16, .V = 8}, 64));
    cases.push_back(gla_case(D{.B = 1, .T = 64, .H = 3, .K = 8, .V = 16}, 64));
    cases.push_back(gla_case(D{.B = 2, .T = 65, .H = 2, .K = 17, .V = 9}, 64));
    cases.push_back(gla_case(D{.B = 1, .T = 65, .H = 2, .K = 17, .V = 9}, 16));
    cases.push_back(gla_case(D{.B = 1, .T = 70, .H = 2, .K = 8, .V = 8}, 7));
    cases.push_back(gla_case(D{.B = 1, .T = 100, .H = 1, .K = 9, .V = 8}, 48));
    // Extreme: strong decay (about -20 per token), a long sequence, zero length.
    cases.push_back(gla_case(D{.B = 1, .T = 65, .H = 2, .K = 8, .V = 8}, 64, -21.0, -19.0, true));
    cases.push_back(gla_case(D{.B = 1, .T = 500, .H = 2, .K = 8, .V = 8}, 64, -0.2, 0.0, true));
    cases.push_back(gla_case(D{.B = 1, .T = 0, .H = 2, .K = 4, .V = 4}, 64, -1.0, 0.0, true));
    return cases;
  };
  return e;
}

}  // namespace speedlm::ops
