#include "ops/loss/cross_entropy/cross_entropy.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

// "fast" writes d_logits to a new tensor; "inplace" runs the backward over a copy of the
// logits that it overwrites (d_logits aliasing logits), as training does to save [N, V].
OpForm cross_entropy_form(const CrossEntropyParams& p, int64_t N, int64_t V, bool inplace) {
  OpForm f;
  f.name = inplace ? "inplace" : "fast";
  f.fwd = [=](const Tensors& in) {
    Tensor loss = Tensor::empty({N}), lse = Tensor::empty({N});
    cross_entropy_fast_fwd(p, in[0].f32(), in[1].i32(), N, V, loss.f32(), lse.f32());
    return Tensors{loss};
  };
  f.bwd = [=](const Tensors& in, const Tensors& dout) {
    Tensor loss = Tensor::empty({N}), lse = Tensor::empty({N});
    cross_entropy_fast_fwd(p, in[0].f32(), in[1].i32(), N, V, loss.f32(), lse.f32());
    Tensor d_logits = inplace ? in[0].clone() : Tensor::empty({N, V});
    const float* logits = inplace ? d_logits.f32() : in[0].f32();
    cross_entropy_fast_bwd(p, logits, in[1].i32(), lse.f32(), dout[0].f32(), N, V, d_logits.f32());
    return Tensors{d_logits, Tensor()};
  };
  return f;
}

OpCase cross_entropy_case(int64_t N, int64_t V, double scale, double ignore_fraction, bool extreme) {
  CrossEntropyParams p;
  OpCase c;
  c.label = fmt::format("N={} V={} |z|~{:g} ignored~{:g}", N, V, scale, ignore_fraction);
  c.extreme = extreme;
  InputSpec targets{"targets", {N}, InputSpec::Kind::Index, 0.0, static_cast<double>(V), false};
  targets.ignore_fraction = ignore_fraction;
  targets.ignore_value = p.ignore_index;
  c.inputs = {{"logits", {N, V}, InputSpec::Kind::Normal, 0.0, scale}, targets};
  c.ref_fwd = [=](const DBufs& in) {
    DBuf loss({N}), lse({N});
    cross_entropy_ref_fwd<double>(p, in[0].v.data(), to_i32_values(in[1]).data(), N, V, loss.v.data(), lse.v.data());
    return DBufs{loss};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBuf d_logits({N, V});
    cross_entropy_ref_bwd<double>(p, in[0].v.data(), to_i32_values(in[1]).data(), dout[0].v.data(), N, V,
                                  d_logits.v.data());
    return DBufs{d_logits, DBuf()};
  };
  c.forms = {cross_entropy_form(p, N, V, false), cross_entropy_form(p, N, V, true)};
  return c;
}

}  // namespace

OpEntry cross_entropy_registry_entry() {
  OpEntry e;
  e.name = "cross_entropy";
  // At V = 5003 most gradients are ~1/V, near the rounding noise of the double loss over a 1e-6
  // step; a 1e-5 step lifts them above it (truncation stays ~1e-10 relative).
  e.fd_eps = 1e-5;
  e.cases = [] {
    return std::vector<OpCase>{
        cross_entropy_case(1, 17, 1, 0, false),      cross_entropy_case(7, 63, 2, 0.2, false),
        cross_entropy_case(65, 64, 1, 0.1, false),   cross_entropy_case(33, 65, 3, 0, false),
        cross_entropy_case(5, 1, 1, 0, false),       cross_entropy_case(40, 5003, 2, 0.1, false),
        // Logits ~1e3: exp(z - lse) underflows for all but a few entries per row; a quarter of
        // the targets ignored. And a row whose every target is ignored.
        cross_entropy_case(33, 4096, 1e3, 0.25, true), cross_entropy_case(3, 100, 1, 1.0, true),
    };
  };
  return e;
}

}  // namespace speedlm::ops
