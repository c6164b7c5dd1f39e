#include "ops/linear/gated_delta_rule/gated_delta_rule.h"
#include "ops/linear/gated_delta_rule/gated_delta_rule_registry.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

using P = GatedDeltaRuleParams;
using D = GatedDeltaRuleDims;

// Inputs: q, k, v, beta, [g,] h0 (g only when gated). Outputs: o, ht.
struct Layout {
  bool gated;
  size_t h0() const { return gated ? 5 : 4; }
  const double* g(const DBufs& in) const { return gated ? in[4].v.data() : nullptr; }
  const float* g(const Tensors& in) const { return gated ? in[4].f32() : nullptr; }
};

OpForm chunk_or_step_form(const P& p, const D& d, Layout lay, bool chunk) {
  const Shape qs{d.B, d.T, d.H, d.K}, vs{d.B, d.T, d.H, d.V}, ss{d.B, d.T, d.H}, hs{d.B, d.H, d.K, d.V};
  OpForm f;
  f.name = chunk ? "chunk" : "step";
  f.fwd = [=](const Tensors& in) {
    Tensor o = Tensor::empty(vs), ht = Tensor::empty(hs);
    if (chunk) {
      gated_delta_rule_chunk_fwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(), lay.g(in),
                                 in[lay.h0()].f32(), o.f32(), ht.f32());
    } else {
      std::copy(in[lay.h0()].f32(), in[lay.h0()].f32() + ht.numel(), ht.f32());
      gated_delta_rule_step_fwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(), lay.g(in), ht.f32(),
                                o.f32());
    }
    return Tensors{o, ht};
  };
  f.bwd = [=](const Tensors& in, const Tensors& dout) {
    Tensors gr{Tensor::empty(qs), Tensor::empty(qs), Tensor::empty(vs), Tensor::empty(ss)};
    if (lay.gated) gr.push_back(Tensor::empty(ss));
    gr.push_back(Tensor::empty(hs));
    GatedDeltaRuleGradsF g{gr[0].f32(), gr[1].f32(), gr[2].f32(), gr[3].f32(), lay.gated ? gr[4].f32() : nullptr,
                           gr[lay.h0()].f32()};
    auto bwd = chunk ? gated_delta_rule_chunk_bwd : gated_delta_rule_step_bwd;
    bwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(), lay.g(in), in[lay.h0()].f32(), dout[0].f32(),
        dout[1].f32(), g);
    return gr;
  };
  return f;
}

}  // namespace

OpCase delta_rule_family_case(const DeltaCaseSpec& s) {
  const P p{.scale = 0.0f, .chunk = s.chunk};
  const D d = s.d;
  const Layout lay{s.gated};
  const Shape qs{d.B, d.T, d.H, d.K}, vs{d.B, d.T, d.H, d.V}, ss{d.B, d.T, d.H}, hs{d.B, d.H, d.K, d.V};
  OpCase c;
  c.label = fmt::format("B={} T={} H={} K={} V={} C={} beta=U({},{}) g=U({},{})", d.B, d.T, d.H, d.K, d.V, s.chunk,
                        s.beta_lo, s.beta_hi, s.g_lo, s.g_hi);
  c.extreme = s.extreme;
  // Keys of norm ~0.7: with beta <= 1 every transition keeps eigenvalues in [-1, 1] (normalised
  // keys are the op's contract; the harness draws unnormalised ones).
  const double k_std = 0.7 / std::sqrt(static_cast<double>(d.K));
  c.inputs = {{"q", qs}, {"k", qs, InputSpec::Kind::Normal, 0.0, k_std}, {"v", vs},
              {"beta", ss, InputSpec::Kind::Uniform, s.beta_lo, s.beta_hi}};
  if (s.gated) c.inputs.push_back({"g", ss, InputSpec::Kind::Uniform, s.g_lo, s.g_hi});
  c.inputs.push_back({"h0", hs});
  c.ref_fwd = [=](const DBufs& in) {
    DBuf o(vs), ht(hs);
    gated_delta_rule_ref_fwd(p, d, in[0].v.data(), in[1].v.data(), in[2].v.data(), in[3].v.data(), lay.g(in),
                             in[lay.h0()].v.data(), o.v.data(), ht.v.data());
    return DBufs{o, ht};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBufs gr{DBuf(qs), DBuf(qs), DBuf(vs), DBuf(ss)};
    if (lay.gated) gr.push_back(DBuf(ss));
    gr.push_back(DBuf(hs));
    GatedDeltaRuleGrads g{gr[0].v.data(), gr[1].v.data(), gr[2].v.data(), gr[3].v.data(),
                          lay.gated ? gr[4].v.data() : nullptr, gr[lay.h0()].v.data()};
    gated_delta_rule_ref_bwd(p, d, in[0].v.data(), in[1].v.data(), in[2].v.data(), in[3].v.data(), lay.g(in),
                             in[lay.h0()].v.data(), dout[0].v.data(), dout[1].v.data(), g);
    return gr;
  };
  c.forms = {chunk_or_step_form(p, d, lay, true), chunk_or_step_form(p, d, lay, false)};
  return c;
}

std::vector<OpCase> delta_rule_family_cases(bool gated) {
  std::vector<OpCase> cases;
  auto add = [&](D d, int64_t chunk, double b_lo = 0.0, double b_hi = 1.0, double g_lo = -0.3, double g_hi = 0.0,
                 bool extreme = false) {
    cases.push_back(delta_rule_family_case({gated, d, chunk, b_lo, b_hi, g_lo, g_hi, extreme}));
  };
  add(D{.B = 2, .T = 1, .H = 2, .K = 8, .V = 8}, 64);
  add(D{.B = 1, .T = 63, .H = 2, .K = 16, .V = 12}, 16);
  add(D{.B = 1, .T = 64, .H = 2, .K = 16, .V = 16}, 64);
  add(D{.B = 2, .T = 65, .H = 1, .K = 17, .V = 9}, 64);
  add(D{.B = 1, .T = 37, .H = 3, .K = 8, .V = 8}, 16);
  // Extreme and edge: no tokens, beta = 0 (identity transitions), beta = 1 (full overwrite),
  // decays of e^-20 .. e^-60 per token (chunk cumsums far below -88), long sequences.
  add(D{.B = 1, .T = 0, .H = 2, .K = 8, .V = 8}, 64, 0.0, 1.0, -0.3, 0.0, true);
  add(D{.B = 1, .T = 65, .H = 2, .K = 16, .V = 8}, 32, 0.0, 0.0, -0.3, 0.0, true);
  add(D{.B = 1, .T = 65, .H = 2, .K = 16, .V = 8}, 32, 1.0, 1.0, -0.3, 0.0, true);
  if (gated) add(D{.B = 1, .T = 65, .H = 2, .K = 16, .V = 8}, 64, 0.0, 1.0, -60.0, -20.0, true);
  add(D{.B = 1, .T = 500, .H = 1, .K = 8, .V = 8}, 64, 0.0, 1.0, 0.0, 0.0, true);
  add(D{.B = 1, .T = 500, .H = 1, .K = 8, .V = 8}, 64, 0.0, 1.0, -0.3, 0.0, true);
  return cases;
}

OpEntry gated_delta_rule_registry_entry() {
  OpEntry e;
  e.name = "gated_delta_rule";
  e.cases = [] { return delta_rule_family_cases(true); };
  return e;
}

}  // namespace speedlm::ops
