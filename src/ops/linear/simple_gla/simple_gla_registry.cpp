#include "ops/linear/simple_gla/simple_gla.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

// Inputs q, k, v, [g], h0; outputs o, ht. Gates are uniform in [g_lo, g_hi) (log space).
OpCase simple_gla_case(const SimpleGlaDims& d, bool gated, int64_t chunk, double g_lo = -1.0, double g_hi = 0.0,
                       bool extreme = false) {
  SimpleGlaParams p;
  p.chunk = chunk;
  OpCase c;
  c.label = fmt::format("B={} T={} H={} K={} V={} chunk={} {}", d.B, d.T, d.H, d.K, d.V, chunk,
                        gated ? fmt::format("g~U[{},{})", g_lo, g_hi) : "no gate");
  const Shape ks{d.B, d.T, d.H, d.K}, vs{d.B, d.T, d.H, d.V}, gs{d.B, d.T, d.H}, ss{d.B, d.H, d.K, d.V};
  c.inputs = {{"q", ks}, {"k", ks}, {"v", vs}};
  if (gated) c.inputs.push_back({"g", gs, InputSpec::Kind::Uniform, g_lo, g_hi});
  c.inputs.push_back({"h0", ss});
  c.extreme = extreme;
  const size_t ih = gated ? 4 : 3;
  c.ref_fwd = [=](const DBufs& in) {
    DBuf o(vs), ht(ss);
    simple_gla_ref_fwd<double>(p, d, in[0].v.data(), in[1].v.data(), in[2].v.data(), gated ? in[3].v.data() : nullptr,
                               in[ih].v.data(), o.v.data(), ht.v.data());
    return DBufs{o, ht};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBuf dq(ks), dk(ks), dv(vs), dg(gs), dh0(ss);
    simple_gla_ref_bwd<double>(p, d, in[0].v.data(), in[1].v.data(), in[2].v.data(), gated ? in[3].v.data() : nullptr,
                               in[ih].v.data(), dout[0].v.data(), dout[1].v.data(), dq.v.data(), dk.v.data(),
                               dv.v.data(), dg.v.data(), dh0.v.data());
    return gated ? DBufs{dq, dk, dv, dg, dh0} : DBufs{dq, dk, dv, dh0};
  };
  auto grads = [=](const Tensors& in, const Tensors& dout, auto bwd) {
    Tensor dq = Tensor::empty(ks), dk = Tensor::empty(ks), dv = Tensor::empty(vs), dg = Tensor::empty(gs),
           dh0 = Tensor::empty(ss);
    bwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), gated ? in[3].f32() : nullptr, in[ih].f32(), dout[0].f32(),
        dout[1].f32(), dq.f32(), dk.f32(), dv.f32(), gated ? dg.f32() : nullptr, dh0.f32());
    return gated ? Tensors{dq, dk, dv, dg, dh0} : Tensors{dq, dk, dv, dh0};
  };
  OpForm chunk_form{"chunk", nullptr, nullptr};
  chunk_form.fwd = [=](const Tensors& in) {
    Tensor o = Tensor::empty(vs), ht = Tensor::empty(ss);
    simple_gla_chunk_fwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), gated ? in[3].f32() : nullptr, in[ih].f32(),
                         o.f32(), ht.f32());
    return Tensors{o, ht};
  };
  chunk_form.bwd = [=](const Tensors& in, const Tensors& dout) { return grads(in, dout, simple_gla_chunk_bwd); };
  OpForm step_form{"step", nullptr, nullptr};
  step_form.fwd = [=](const Tensors& in) {
    Tensor o = Tensor::empty(vs), ht = in[ih].clone();
    simple_gla_step_fwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), gated ? in[3].f32() : nullptr, ht.f32(), o.f32());
    return Tensors{o, ht};
  };
  step_form.bwd = [=](const Tensors& in, const Tensors& dout) { return grads(in, dout, simple_gla_step_bwd); };
  c.forms = {chunk_form, step_form};
  return c;
}

}  // namespace

OpEntry simple_gla_registry_entry() {
  OpEntry e;
  e.name = "simple_gla";
  // The weighted output sums are O(30): a 1e-6 step leaves ~1e-9 of rounding in each finite
  // difference, the size of the true gradients of h0 and g under strong decay. The outputs are
  // linear in q, v, h0 and smooth in g, so a 1e-4 step costs ~1e-8 relative truncation error.
  e.fd_eps = 1e-4;
  e.cases = [] {
    using D = SimpleGlaDims;
    std::vector<OpCase> cases;
    cases.push_back(simple_gla_case(D{.B = 2, .T = 1, .H = 2, .K = 8, .V = 8}, true, 64));
    cases.push_back(simple_gla_case(D{.B = 1, .T = 63, .H = 2, .K = 16, .V = 8}, true, 64));
    cases.push_back(simple_gla_case(D{.B = 1, .T = 64, .H = 3, .K = 8, .V = 16}, true, 64));
    cases.push_back(simple_gla_case(D{.B = 2, .T = 65, .H = 2, .K = 17, .V = 9}, true, 64));
    cases.push_back(simple_gla_case(D{.B = 1, .T = 65, .H = 2, .K = 17, .V = 9}, true, 16));
    cases.push_back(simple_gla_case(D{.B = 1, .T = 70, .H = 2, .K = 8, .V = 8}, true, 7));
    // g = 0: linear attention.
    cases.push_back(simple_gla_case(D{.B = 1, .T = 65, .H = 2, .K = 9, .V = 16}, false, 32));
    // Extreme: strong decay (about -20 per token), a long sequence, zero length.
    cases.push_back(simple_gla_case(D{.B = 1, .T = 65, .H = 2, .K = 8, .V = 8}, true, 64, -21.0, -19.0, true));
    cases.push_back(simple_gla_case(D{.B = 1, .T = 500, .H = 2, .K = 8, .V = 8}, true, 64, -0.2, 0.0, true));
    cases.push_back(simple_gla_case(D{.B = 1, .T = 0, .H = 2, .K = 4, .V = 4}, true, 64, -1.0, 0.0, true));
    return cases;
  };
  return e;
}

}  // namespace speedlm::ops
