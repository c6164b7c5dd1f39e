#include "ops/registry.h"
#include "ops/ssm/selective_scan/selective_scan.h"

namespace speedlm::ops {

namespace {

using D = SelectiveScanDims;

// Inputs: u, delta, A, B, C, D, h0. Outputs: y, ht.
OpCase scan_case(const D& d, int64_t chunk, double dt_lo, double dt_hi, bool extreme = false) {
  const SelectiveScanParams p{.chunk = chunk};
  const Shape us{d.B, d.T, d.D}, as{d.D, d.N}, bs{d.B, d.T, d.N}, ds{d.D}, hs{d.B, d.D, d.N};
  OpCase c;
  c.label = fmt::format("B={} T={} D={} N={} chunk={} delta=U({},{})", d.B, d.T, d.D, d.N, chunk, dt_lo, dt_hi);
  c.extreme = extreme;
  c.inputs = {{"u", us},
              {"delta", us, InputSpec::Kind::Uniform, dt_lo, dt_hi},
              {"A", as, InputSpec::Kind::Uniform, -3.0, -0.1},
              {"B", bs},
              {"C", bs},
              {"D", ds},
              {"h0", hs}};
  c.ref_fwd = [=](const DBufs& in) {
    DBuf y(us), ht(hs);
    selective_scan_ref_fwd(p, d, in[0].v.data(), in[1].v.data(), in[2].v.data(), in[3].v.data(), in[4].v.data(),
                           in[5].v.data(), in[6].v.data(), y.v.data(), ht.v.data());
    return DBufs{y, ht};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBufs gr{DBuf(us), DBuf(us), DBuf(as), DBuf(bs), DBuf(bs), DBuf(ds), DBuf(hs)};
    SelectiveScanGrads<double> g{gr[0].v.data(), gr[1].v.data(), gr[2].v.data(), gr[3].v.data(),
                                 gr[4].v.data(), gr[5].v.data(), gr[6].v.data()};
    selective_scan_ref_bwd(p, d, in[0].v.data(), in[1].v.data(), in[2].v.data(), in[3].v.data(), in[4].v.data(),
                           in[5].v.data(), in[6].v.data(), dout[0].v.data(), dout[1].v.data(), g);
    return gr;
  };
  for (bool chunk_form : {true, false}) {
    OpForm f;
    f.name = chunk_form ? "chunk" : "step";
    f.fwd = [=](const Tensors& in) {
      Tensor y = Tensor::empty(us), ht = Tensor::empty(hs);
      if (chunk_form) {
        selective_scan_chunk_fwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(), in[4].f32(), in[5].f32(),
                                 in[6].f32(), y.f32(), ht.f32());
      } else {
        std::copy(in[6].f32(), in[6].f32() + ht.numel(), ht.f32());
        selective_scan_step_fwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(), in[4].f32(), in[5].f32(),
                                ht.f32(), y.f32());
      }
      return Tensors{y, ht};
    };
    f.bwd = [=](const Tensors& in, const Tensors& dout) {
      Tensors gr{Tensor::empty(us), Tensor::empty(us), Tensor::empty(as), Tensor::empty(bs),
                 Tensor::empty(bs), Tensor::empty(ds), Tensor::empty(hs)};
      SelectiveScanGrads<float> g{gr[0].f32(), gr[1].f32(), gr[2].f32(), gr[3].f32(),
                                  gr[4].f32(), gr[5].f32(), gr[6].f32()};
      auto bwd = chunk_form ? selective_scan_chunk_bwd : selective_scan_step_bwd;
      bwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(), in[4].f32(), in[5].f32(), in[6].f32(),
          dout[0].f32(), dout[1].f32(), g);
      return gr;
    };
    c.forms.push_back(f);
  }
  return c;
}

}  // namespace

OpEntry selective_scan_registry_entry() {
  OpEntry e;
  e.name = "selective_scan";
  // Outputs sum many O(1) terms: a larger step keeps the central difference above their rounding.
  e.fd_eps = 1e-5;
  e.cases = [] {
    std::vector<OpCase> cases;
    cases.push_back(scan_case(D{.B = 2, .T = 1, .D = 3, .N = 4}, 64, 0.01, 0.5));
    cases.push_back(scan_case(D{.B = 1, .T = 63, .D = 5, .N = 16}, 16, 0.01, 0.5));
    cases.push_back(scan_case(D{.B = 1, .T = 64, .D = 17, .N = 8}, 64, 0.01, 0.5));
    cases.push_back(scan_case(D{.B = 2, .T = 65, .D = 7, .N = 5}, 16, 0.01, 0.5));
    cases.push_back(scan_case(D{.B = 1, .T = 37, .D = 33, .N = 16}, 8, 0.01, 0.5));
    // Extreme and edge: no tokens; decays down to e^-60 per token; a long, nearly undecayed sequence.
    cases.push_back(scan_case(D{.B = 1, .T = 0, .D = 4, .N = 4}, 64, 0.01, 0.5, true));
    cases.push_back(scan_case(D{.B = 1, .T = 65, .D = 5, .N = 8}, 16, 5.0, 20.0, true));
    cases.push_back(scan_case(D{.B = 1, .T = 500, .D = 3, .N = 4}, 64, 1e-4, 1e-3, true));
    return cases;
  };
  return e;
}

}  // namespace speedlm::ops
