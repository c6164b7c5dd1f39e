#include "ops/attention/attention/attention.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

// Outputs: o only. lse is saved state for the backward, not a differentiable output (its
// cotangent is not part of the contract); test_attention.cpp compares it to the reference.
OpCase attention_case(const AttentionDims& d, bool causal, double qk_std = 1.0, bool extreme = false) {
  AttentionParams p;
  p.causal = causal;
  OpCase c;
  c.label = fmt::format("{} B={} Tq={} Tk={} H={} KVH={} Dh={}{}", causal ? "causal" : "full", d.B, d.Tq, d.Tk, d.H,
                        d.KVH, d.Dh, qk_std != 1.0 ? fmt::format(" qk_std={}", qk_std) : "");
  const Shape qs{d.B, d.Tq, d.H, d.Dh}, ks{d.B, d.Tk, d.KVH, d.Dh}, ls{d.B, d.H, d.Tq};
  c.inputs = {{"q", qs, InputSpec::Kind::Normal, 0.0, qk_std},
              {"k", ks, InputSpec::Kind::Normal, 0.0, qk_std},
              {"v", ks}};
  c.extreme = extreme;
  c.ref_fwd = [=](const DBufs& in) {
    DBuf o(qs), lse(ls);
    attention_ref_fwd<double>(p, d, in[0].v.data(), in[1].v.data(), in[2].v.data(), o.v.data(), lse.v.data());
    return DBufs{o};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBuf dq(qs), dk(ks), dv(ks);
    attention_ref_bwd<double>(p, d, in[0].v.data(), in[1].v.data(), in[2].v.data(), dout[0].v.data(), dq.v.data(),
                              dk.v.data(), dv.v.data());
    return DBufs{dq, dk, dv};
  };
  OpForm f;
  f.name = "plain";
  auto fwd = [=](const Tensors& in) {
    Tensor o = Tensor::empty(qs), lse = Tensor::empty(ls);
    attention_plain_fwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), o.f32(), lse.f32());
    return Tensors{o, lse};
  };
  f.fwd = [=](const Tensors& in) { return Tensors{fwd(in)[0]}; };
  f.bwd = [=](const Tensors& in, const Tensors& dout) {
    Tensors ol = fwd(in);
    Tensor dq = Tensor::empty(qs), dk = Tensor::empty(ks), dv = Tensor::empty(ks);
    attention_plain_bwd(p, d, in[0].f32(), in[1].f32(), in[2].f32(), ol[0].f32(), ol[1].f32(), dout[0].f32(),
                        dq.f32(), dk.f32(), dv.f32());
    return Tensors{dq, dk, dv};
  };
  c.forms.push_back(f);
  return c;
}

}  // namespace

OpEntry attention_registry_entry() {
  OpEntry e;
  e.name = "attention";
  e.cases = [] {
    using D = AttentionDims;
    std::vector<OpCase> cases;
    for (bool causal : {true, false}) {
      cases.push_back(attention_case(D{.B = 2, .Tq = 1, .Tk = 1, .H = 2, .KVH = 1, .Dh = 8}, causal));
      cases.push_back(attention_case(D{.B = 1, .Tq = 63, .Tk = 63, .H = 4, .KVH = 2, .Dh = 16}, causal));
      cases.push_back(attention_case(D{.B = 1, .Tq = 64, .Tk = 64, .H = 4, .KVH = 1, .Dh = 16}, causal));
      cases.push_back(attention_case(D{.B = 1, .Tq = 65, .Tk = 65, .H = 2, .KVH = 2, .Dh = 17}, causal));
      cases.push_back(attention_case(D{.B = 2, .Tq = 1, .Tk = 37, .H = 4, .KVH = 2, .Dh = 16}, causal));
      cases.push_back(attention_case(D{.B = 1, .Tq = 5, .Tk = 70, .H = 3, .KVH = 1, .Dh = 17}, causal));
    }
    // A group of 6 query heads is stacked 4 + 2 (kStackRows = 256 over 64-row blocks).
    cases.push_back(attention_case(D{.B = 1, .Tq = 65, .Tk = 65, .H = 6, .KVH = 1, .Dh = 8}, true));
    // Non-causal only (causal needs Tq <= Tk): more queries than keys, a single key.
    cases.push_back(attention_case(D{.B = 1, .Tq = 70, .Tk = 5, .H = 2, .KVH = 1, .Dh = 9}, false));
    cases.push_back(attention_case(D{.B = 1, .Tq = 7, .Tk = 1, .H = 2, .KVH = 2, .Dh = 8}, false));
    // Extreme: scores of about +-100 (q, k ~ N(0, 10^2), Dh = 16) and a long sequence.
    cases.push_back(attention_case(D{.B = 1, .Tq = 65, .Tk = 65, .H = 4, .KVH = 2, .Dh = 16}, true, 10.0, true));
    cases.push_back(attention_case(D{.B = 1, .Tq = 20, .Tk = 90, .H = 2, .KVH = 1, .Dh = 16}, false, 10.0, true));
    cases.push_back(attention_case(D{.B = 1, .Tq = 500, .Tk = 500, .H = 2, .KVH = 1, .Dh = 8}, true, 1.0, true));
    return cases;
  };
  return e;
}

}  // namespace speedlm::ops
