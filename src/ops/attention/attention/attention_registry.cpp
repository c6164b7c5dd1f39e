#include <memory>
#include <string>
#include <vector>

#include "ops/attention/attention/attention.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

// The variants of a case beyond its dims.
struct Variant {
  bool causal = true;
  double qk_std = 1.0;
  bool extreme = false;
  int64_t window = 0;
  float softcap = 0.0f;
  bool sinks = false;
};

using FwdFn = void (*)(const AttentionParams&, const AttentionDims&, const float*, const float*, const float*, float*,
                       float*, const float*);
using BwdFn = void (*)(const AttentionParams&, const AttentionDims&, const float*, const float*, const float*,
                       const float*, const float*, const float*, float*, float*, float*, const float*, float*);

// Outputs: o only. lse is saved state for the backward, not a differentiable output (its
// cotangent is not part of the contract); test_attention.cpp compares it to the reference.
// Inputs: q, k, v and, with sinks, the per-head sink logits [H] (N(0, 1), gradient checked).
OpForm attention_form(const char* name, FwdFn fwd_fn, BwdFn bwd_fn, const AttentionParams& p,
                      std::shared_ptr<AttentionDims> dp, bool sinks) {
  const AttentionDims& d = *dp;
  const Shape qs{d.B, d.Tq, d.H, d.Dh}, ks{d.B, d.Tk, d.KVH, d.Dh}, ls{d.B, d.H, d.Tq};
  OpForm f;
  f.name = name;
  auto sink = [sinks](const Tensors& in) { return sinks ? in[3].f32() : nullptr; };
  auto fwd = [=](const Tensors& in) {
    Tensor o = Tensor::empty(qs), lse = Tensor::empty(ls);
    fwd_fn(p, *dp, in[0].f32(), in[1].f32(), in[2].f32(), o.f32(), lse.f32(), sink(in));
    return Tensors{o, lse};
  };
  f.fwd = [=](const Tensors& in) { return Tensors{fwd(in)[0]}; };
  f.bwd = [=](const Tensors& in, const Tensors& dout) {
    Tensors ol = fwd(in);
    Tensor dq = Tensor::empty(qs), dk = Tensor::empty(ks), dv = Tensor::empty(ks);
    Tensor ds = Tensor::empty({sinks ? d.H : 0});
    bwd_fn(p, *dp, in[0].f32(), in[1].f32(), in[2].f32(), ol[0].f32(), ol[1].f32(), dout[0].f32(), dq.f32(),
           dk.f32(), dv.f32(), sink(in), sinks ? ds.f32() : nullptr);
    return sinks ? Tensors{dq, dk, dv, ds} : Tensors{dq, dk, dv};
  };
  return f;
}

// Packed sequences when cu_seqlens is non-empty (the dims get B = 1, Tq = Tk = total).
OpCase attention_case(AttentionDims dims, const Variant& var = {}, const std::vector<int32_t>& cu_seqlens = {}) {
  AttentionParams p;
  p.causal = var.causal;
  p.window = var.window;
  p.softcap = var.softcap;
  // The dims point into cu_seqlens, so both live in shared storage owned by the closures.
  auto cu = std::make_shared<std::vector<int32_t>>(cu_seqlens);
  auto dp = std::make_shared<AttentionDims>(dims);
  if (!cu->empty()) {
    dp->B = 1;
    dp->Tq = dp->Tk = cu->back();
    dp->seqs = static_cast<int64_t>(cu->size()) - 1;
    dp->cu_seqlens = cu->data();
  }
  const AttentionDims& d = *dp;
  const bool sinks = var.sinks;
  OpCase c;
  std::string seqs;
  for (int32_t x : *cu) seqs += fmt::format("{}{}", seqs.empty() ? " cu=" : ",", x);
  c.label = fmt::format("{} B={} Tq={} Tk={} H={} KVH={} Dh={}{}{}{}{}{}", var.causal ? "causal" : "full", d.B, d.Tq,
                        d.Tk, d.H, d.KVH, d.Dh, var.qk_std != 1.0 ? fmt::format(" qk_std={}", var.qk_std) : "",
                        var.window ? fmt::format(" window={}", var.window) : "",
                        var.softcap != 0.0f ? fmt::format(" softcap={}", var.softcap) : "", sinks ? " sinks" : "",
                        seqs);
  const Shape qs{d.B, d.Tq, d.H, d.Dh}, ks{d.B, d.Tk, d.KVH, d.Dh}, ls{d.B, d.H, d.Tq};
  c.inputs = {{"q", qs, InputSpec::Kind::Normal, 0.0, var.qk_std},
              {"k", ks, InputSpec::Kind::Normal, 0.0, var.qk_std},
              {"v", ks}};
  if (sinks) c.inputs.push_back({"sinks", {d.H}});
  c.extreme = var.extreme;
  auto sink = [sinks](const DBufs& in) { return sinks ? in[3].v.data() : nullptr; };
  c.ref_fwd = [=](const DBufs& in) {
    DBuf o(qs), lse(ls);
    attention_ref_fwd<double>(p, *dp, in[0].v.data(), in[1].v.data(), in[2].v.data(), o.v.data(), lse.v.data(),
                              sink(in));
    return DBufs{o};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBuf dq(qs), dk(ks), dv(ks), ds(Shape{sinks ? d.H : 0});
    attention_ref_bwd<double>(p, *dp, in[0].v.data(), in[1].v.data(), in[2].v.data(), dout[0].v.data(), dq.v.data(),
                              dk.v.data(), dv.v.data(), sink(in), sinks ? ds.v.data() : nullptr);
    (void)cu;  // keeps cu_seqlens alive with the closure
    return sinks ? DBufs{dq, dk, dv, ds} : DBufs{dq, dk, dv};
  };
  c.forms.push_back(attention_form("plain", attention_plain_fwd, attention_plain_bwd, p, dp, sinks));
  c.forms.push_back(attention_form("flash", attention_flash_fwd, attention_flash_bwd, p, dp, sinks));
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
      cases.push_back(attention_case(D{.B = 2, .Tq = 1, .Tk = 1, .H = 2, .KVH = 1, .Dh = 8}, {.causal = causal}));
      cases.push_back(attention_case(D{.B = 1, .Tq = 63, .Tk = 63, .H = 4, .KVH = 2, .Dh = 16}, {.causal = causal}));
      cases.push_back(attention_case(D{.B = 1, .Tq = 64, .Tk = 64, .H = 4, .KVH = 1, .Dh = 16}, {.causal = causal}));
      cases.push_back(attention_case(D{.B = 1, .Tq = 65, .Tk = 65, .H = 2, .KVH = 2, .Dh = 17}, {.causal = causal}));
      cases.push_back(attention_case(D{.B = 2, .Tq = 1, .Tk = 37, .H = 4, .KVH = 2, .Dh = 16}, {.causal = causal}));
      cases.push_back(attention_case(D{.B = 1, .Tq = 5, .Tk = 70, .H = 3, .KVH = 1, .Dh = 17}, {.causal = causal}));
    }
    // A group of 6 query heads is stacked 4 + 2 (kStackRows = 256 over 64-row blocks).
    cases.push_back(attention_case(D{.B = 1, .Tq = 65, .Tk = 65, .H = 6, .KVH = 1, .Dh = 8}));
    // Non-causal only (causal needs Tq <= Tk): more queries than keys, a single key.
    cases.push_back(attention_case(D{.B = 1, .Tq = 70, .Tk = 5, .H = 2, .KVH = 1, .Dh = 9}, {.causal = false}));
    cases.push_back(attention_case(D{.B = 1, .Tq = 7, .Tk = 1, .H = 2, .KVH = 2, .Dh = 8}, {.causal = false}));
    // Extreme: scores of about +-100 (q, k ~ N(0, 10^2), Dh = 16) and a long sequence.
    cases.push_back(attention_case(D{.B = 1, .Tq = 65, .Tk = 65, .H = 4, .KVH = 2, .Dh = 16}, {.qk_std = 10.0, .extreme = true}));
    cases.push_back(attention_case(D{.B = 1, .Tq = 20, .Tk = 90, .H = 2, .KVH = 1, .Dh = 16}, {.causal = false, .qk_std = 10.0, .extreme = true}));
    cases.push_back(attention_case(D{.B = 1, .Tq = 500, .Tk = 500, .H = 2, .KVH = 1, .Dh = 8}, {.extreme = true}));
    // Several flash tiles (64 x 64), lengths off the tile, head dims on and off the 16-float vector.
    cases.push_back(attention_case(D{.B = 1, .Tq = 150, .Tk = 150, .H = 1, .KVH = 1, .Dh = 17}));
    cases.push_back(attention_case(D{.B = 2, .Tq = 100, .Tk = 100, .H = 1, .KVH = 1, .Dh = 32}, {.causal = false}));
    cases.push_back(attention_case(D{.B = 1, .Tq = 100, .Tk = 100, .H = 1, .KVH = 1, .Dh = 64}));
    cases.push_back(attention_case(D{.B = 1, .Tq = 40, .Tk = 100, .H = 1, .KVH = 1, .Dh = 128}));
    // Left sliding window: self-attention, a query block after a prefix, bidirectional.
    cases.push_back(attention_case(D{.B = 1, .Tq = 140, .Tk = 140, .H = 1, .KVH = 1, .Dh = 16}, {.window = 40}));
    cases.push_back(attention_case(D{.B = 2, .Tq = 20, .Tk = 90, .H = 2, .KVH = 1, .Dh = 16}, {.window = 30}));
    cases.push_back(attention_case(D{.B = 1, .Tq = 100, .Tk = 100, .H = 2, .KVH = 2, .Dh = 9},
                                   {.causal = false, .window = 25}));
    // Softcap, with scores large enough to bend (|s| ~ 9 against c = 5), and extreme (|s| ~ 100).
    cases.push_back(attention_case(D{.B = 1, .Tq = 100, .Tk = 100, .H = 2, .KVH = 1, .Dh = 16},
                                   {.qk_std = 3.0, .softcap = 5.0f}));
    cases.push_back(attention_case(D{.B = 1, .Tq = 70, .Tk = 70, .H = 2, .KVH = 1, .Dh = 16},
                                   {.causal = false, .qk_std = 10.0, .extreme = true, .softcap = 20.0f}));
    // Sinks, alone and with every other variant.
    cases.push_back(attention_case(D{.B = 2, .Tq = 100, .Tk = 100, .H = 2, .KVH = 1, .Dh = 16}, {.sinks = true}));
    cases.push_back(attention_case(D{.B = 1, .Tq = 1, .Tk = 1, .H = 2, .KVH = 1, .Dh = 8}, {.sinks = true}));
    cases.push_back(attention_case(D{.B = 1, .Tq = 70, .Tk = 70, .H = 2, .KVH = 1, .Dh = 16},
                                   {.causal = false, .sinks = true}));
    cases.push_back(attention_case(D{.B = 1, .Tq = 130, .Tk = 130, .H = 1, .KVH = 1, .Dh = 16},
                                   {.qk_std = 2.0, .window = 50, .softcap = 4.0f, .sinks = true}));
    // Packed sequences, an empty one and a single token included.
    cases.push_back(attention_case(D{.H = 2, .KVH = 1, .Dh = 16}, {}, {0, 1, 66, 66, 135}));
    cases.push_back(attention_case(D{.H = 2, .KVH = 1, .Dh = 17}, {.causal = false}, {0, 70, 100}));
    cases.push_back(attention_case(D{.H = 2, .KVH = 1, .Dh = 16},
                                   {.window = 20, .sinks = true}, {0, 80, 81, 140}));
    return cases;
  };
  return e;
}

}  // namespace speedlm::ops
