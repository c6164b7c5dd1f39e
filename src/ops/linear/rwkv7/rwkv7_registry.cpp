#include "ops/linear/rwkv7/rwkv7.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

using D = Rwkv7Dims;

// Inputs: q, w, k, v, a, b, h0. Outputs: o, ht. a and b are small so the transitions
// diag(e^w) + b a^T stay near-contractive on random inputs (RWKV-7 builds them as -kk, kk * iclr).
OpCase rwkv7_case(const D& d, int64_t chunk, double w_lo, double w_hi, bool extreme = false) {
  const Rwkv7Params p{.scale = 1.0f, .chunk = chunk};
  const Shape ks{d.B, d.T, d.H, d.K}, vs{d.B, d.T, d.H, d.V}, hs{d.B, d.H, d.K, d.V};
  const double kstd = 1.0 / std::sqrt(static_cast<double>(d.K)), abstd = 0.3 * kstd;
  OpCase c;
  c.label = fmt::format("B={} T={} H={} K={} V={} C={} w=U({},{})", d.B, d.T, d.H, d.K, d.V, chunk, w_lo, w_hi);
  c.extreme = extreme;
  c.inputs = {{"q", ks},
              {"w", ks, InputSpec::Kind::Uniform, w_lo, w_hi},
              {"k", ks, InputSpec::Kind::Normal, 0.0, kstd},
              {"v", vs},
              {"a", ks, InputSpec::Kind::Normal, 0.0, abstd},
              {"b", ks, InputSpec::Kind::Normal, 0.0, abstd},
              {"h0", hs}};
  c.ref_fwd = [=](const DBufs& in) {
    DBuf o(vs), ht(hs);
    rwkv7_ref_fwd(p, d, in[0].v.data(), in[1].v.data(), in[2].v.data(), in[3].v.data(), in[4].v.data(),
                  in[5].v.data(), in[6].v.data(), o.v.data(), ht.v.data());
    return DBufs{o, ht};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBufs gr{DBuf(ks), DBuf(ks), DBuf(ks), DBuf(vs), DBuf(ks), DBuf(ks), DBuf(hs)};
    Rwkv7Grads<double> g{gr[0].v.data(), gr[1].v.data(), gr[2].v.data(), gr[3].v.data(),
                         gr[4].v.data(), gr[5].v.data(), gr[6].v.data()};
    rwkv7_ref_bwd(p, d, in[0].v.data(), in[1].v.data(), in[2].v.data(), in[3].v.data(), in[4].v.data(),
                  in[5].v.data(), in[6].v.data(), dout[0].v.data(), dout[1].v.data(), g);
    return gr;
  };
  for (bool chunk_form : {true, false}) {
    OpForm f;
    f.name = chunk_form ? "chunk" : "step";
    f.fwd = [=](const Tensors& in) {
      Tensor o = Tensor::empty(vs), ht = Tensor::empty(hs);
      if (chunk_form) {
        rwkv7_chunk_fwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(), in[4].f32(), in[5].f32(),
                        in[6].f32(), o.f32(), ht.f32());
      } else {
        std::copy(in[6].f32(), in[6].f32() + ht.numel(), ht.f32());
        rwkv7_step_fwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(), in[4].f32(), in[5].f32(), ht.f32(),
                       o.f32());
      }
      return Tensors{o, ht};
    };
    f.bwd = [=](const Tensors& in, const Tensors& dout) {
      Tensors gr{Tensor::empty(ks), Tensor::empty(ks), Tensor::empty(ks), Tensor::empty(vs),
                 Tensor::empty(ks), Tensor::empty(ks), Tensor::empty(hs)};
      Rwkv7Grads<float> g{gr[0].f32(), gr[1].f32(), gr[2].f32(), gr[3].f32(), gr[4].f32(), gr[5].f32(), gr[6].f32()};
      auto bwd = chunk_form ? rwkv7_chunk_bwd : rwkv7_step_bwd;
      bwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), in[3].f32(), in[4].f32(), in[5].f32(), in[6].f32(),
          dout[0].f32(), dout[1].f32(), g);
      return gr;
    };
    c.forms.push_back(f);
  }
  return c;
}

}  // namespace

OpEntry rwkv7_registry_entry() {
  OpEntry e;
  e.name = "rwkv7";
  e.cases = [] {
    constexpr double kWMin = -0.6065306597;  // RWKV-7's bound: w = -e^-0.5 sigmoid(.)
    std::vector<OpCase> cases;
    cases.push_back(rwkv7_case(D{.B = 2, .T = 1, .H = 2, .K = 8, .V = 8}, 32, kWMin, 0.0));
    cases.push_back(rwkv7_case(D{.B = 1, .T = 63, .H = 2, .K = 16, .V = 12}, 16, kWMin, 0.0));
    cases.push_back(rwkv7_case(D{.B = 1, .T = 64, .H = 2, .K = 16, .V = 16}, 32, kWMin, 0.0));
    cases.push_back(rwkv7_case(D{.B = 2, .T = 65, .H = 1, .K = 17, .V = 9}, 64, kWMin, 0.0));
    cases.push_back(rwkv7_case(D{.B = 1, .T = 37, .H = 3, .K = 8, .V = 8}, 16, kWMin, 0.0));
    // Extreme and edge: no tokens; decays of e^-20 .. e^-60 per channel-token (element-wise
    // scores); no decay at all over a long sequence; a long sequence at RWKV-7's decay range.
    cases.push_back(rwkv7_case(D{.B = 1, .T = 0, .H = 2, .K = 8, .V = 8}, 32, kWMin, 0.0, true));
    cases.push_back(rwkv7_case(D{.B = 1, .T = 65, .H = 2, .K = 16, .V = 8}, 32, -60.0, -20.0, true));
    cases.push_back(rwkv7_case(D{.B = 1, .T = 70, .H = 1, .K = 8, .V = 8}, 32, -3.0, 0.0, true));
    cases.push_back(rwkv7_case(D{.B = 1, .T = 500, .H = 1, .K = 8, .V = 8}, 32, 0.0, 0.0, true));
    cases.push_back(rwkv7_case(D{.B = 1, .T = 500, .H = 1, .K = 8, .V = 8}, 32, kWMin, 0.0, true));
    return cases;
  };
  return e;
}

}  // namespace speedlm::ops
