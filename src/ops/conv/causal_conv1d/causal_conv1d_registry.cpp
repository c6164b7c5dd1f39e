#include "ops/conv/causal_conv1d/causal_conv1d.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

// Inputs x, w, bias, s0 (the window before x); output y.
OpCase causal_conv1d_case(const CausalConv1dDims& d, bool silu, double x_std = 1.0, bool extreme = false) {
  CausalConv1dParams p{silu};
  OpCase c;
  c.label = fmt::format("B={} T={} D={} W={} silu={}{}", d.B, d.T, d.D, d.W, silu,
                        x_std != 1.0 ? fmt::format(" x_std={}", x_std) : "");
  const Shape xs{d.B, d.T, d.D}, ws{d.D, d.W}, bs{d.D}, ss{d.B, d.W - 1, d.D};
  c.inputs = {{"x", xs, InputSpec::Kind::Normal, 0.0, x_std}, {"w", ws, InputSpec::Kind::Normal, 0.0, 0.5},
              {"bias", bs}, {"s0", ss}};
  c.extreme = extreme;
  c.ref_fwd = [=](const DBufs& in) {
    DBuf y(xs);
    causal_conv1d_ref_fwd<double>(p, d, in[0].v.data(), in[1].v.data(), in[2].v.data(), in[3].v.data(), y.v.data());
    return DBufs{y};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBuf dx(xs), dw(ws), db(bs), ds0(ss);
    causal_conv1d_ref_bwd<double>(p, d, in[0].v.data(), in[1].v.data(), in[2].v.data(), in[3].v.data(),
                                  dout[0].v.data(), dx.v.data(), dw.v.data(), db.v.data(), ds0.v.data());
    return DBufs{dx, dw, db, ds0};
  };
  OpForm f{"fast", nullptr, nullptr};
  f.fwd = [=](const Tensors& in) {
    Tensor y = Tensor::empty(xs);
    causal_conv1d_fast_fwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(), y.f32());
    return Tensors{y};
  };
  f.bwd = [=](const Tensors& in, const Tensors& dout) {
    Tensor dx = Tensor::empty(xs), dw = Tensor::empty(ws), db = Tensor::empty(bs), ds0 = Tensor::empty(ss);
    causal_conv1d_fast_bwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(), dout[0].f32(), dx.f32(),
                           dw.f32(), db.f32(), ds0.f32());
    return Tensors{dx, dw, db, ds0};
  };
  c.forms.push_back(f);
  return c;
}

}  // namespace

OpEntry causal_conv1d_registry_entry() {
  OpEntry e;
  e.name = "causal_conv1d";
  e.cases = [] {
    using D = CausalConv1dDims;
    std::vector<OpCase> cases;
    for (bool silu : {true, false}) {
      cases.push_back(causal_conv1d_case(D{.B = 2, .T = 1, .D = 8, .W = 4}, silu));
      cases.push_back(causal_conv1d_case(D{.B = 1, .T = 63, .D = 17, .W = 4}, silu));
      cases.push_back(causal_conv1d_case(D{.B = 2, .T = 65, .D = 70, .W = 3}, silu));
      cases.push_back(causal_conv1d_case(D{.B = 1, .T = 64, .D = 9, .W = 2}, silu));
    }
    // Extreme: large pre-activations (SiLU saturates both ways), shorter than the window, empty.
    cases.push_back(causal_conv1d_case(D{.B = 1, .T = 65, .D = 16, .W = 4}, true, 30.0, true));
    cases.push_back(causal_conv1d_case(D{.B = 2, .T = 2, .D = 8, .W = 4}, true, 1.0, true));
    cases.push_back(causal_conv1d_case(D{.B = 1, .T = 0, .D = 8, .W = 4}, true, 1.0, true));
    cases.push_back(causal_conv1d_case(D{.B = 1, .T = 500, .D = 8, .W = 4}, true, 1.0, true));
    return cases;
  };
  return e;
}

}  // namespace speedlm::ops
