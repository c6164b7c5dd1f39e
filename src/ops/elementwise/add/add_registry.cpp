#include "ops/elementwise/add/add.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

// Backward of y = a + b hands dy to both inputs; the fast form accumulates it with
// add_fast_inplace into zeroed gradients, as the autograd tape does.
Tensors add_fast_bwd(const Tensors& dout) {
  Tensor da = Tensor::zeros(dout[0].shape()), db = Tensor::zeros(dout[0].shape());
  add_fast_inplace(da.f32(), dout[0].f32(), da.numel());
  add_fast_inplace(db.f32(), dout[0].f32(), db.numel());
  return Tensors{da, db};
}

OpCase add_case(int64_t N, double scale_a, double scale_b, bool extreme) {
  OpCase c;
  c.label = fmt::format("N={} |a|~{:g} |b|~{:g}", N, scale_a, scale_b);
  c.extreme = extreme;
  c.inputs = {{"a", {N}, InputSpec::Kind::Normal, 0.0, scale_a}, {"b", {N}, InputSpec::Kind::Normal, 0.0, scale_b}};
  c.ref_fwd = [N](const DBufs& in) {
    DBuf y({N});
    add_ref_fwd<double>(in[0].v.data(), in[1].v.data(), N, y.v.data());
    return DBufs{y};
  };
  c.ref_bwd = [](const DBufs&, const DBufs& dout) { return DBufs{dout[0], dout[0]}; };
  OpForm fast{"fast", [N](const Tensors& in) {
                Tensor y = Tensor::empty({N});
                add_fast_fwd(in[0].f32(), in[1].f32(), N, y.f32());
                return Tensors{y};
              },
              [](const Tensors&, const Tensors& dout) { return add_fast_bwd(dout); }};
  // y aliasing a: the residual stream updated in place through the two-input form.
  OpForm aliased{"aliased", [N](const Tensors& in) {
                   Tensor y = in[0].clone();
                   add_fast_fwd(y.f32(), in[1].f32(), N, y.f32());
                   return Tensors{y};
                 },
                 [](const Tensors&, const Tensors& dout) { return add_fast_bwd(dout); }};
  OpForm inplace{"inplace", [](const Tensors& in) {
                   Tensor y = in[0].clone();
                   add_fast_inplace(y.f32(), in[1].f32(), y.numel());
                   return Tensors{y};
                 },
                 [](const Tensors&, const Tensors& dout) { return add_fast_bwd(dout); }};
  c.forms = {fast, aliased, inplace};
  return c;
}

}  // namespace

OpEntry add_registry_entry() {
  OpEntry e;
  e.name = "add";
  e.cases = [] {
    return std::vector<OpCase>{
        add_case(1, 1, 1, false),         add_case(17, 1, 1, false),          add_case(65, 1, 1, false),
        add_case(200003, 1, 1, false),    add_case(0, 1, 1, true),            add_case(4097, 1e30, 1e30, true),
        add_case(4097, 1e-30, 1e-30, true),
    };
  };
  return e;
}

}  // namespace speedlm::ops
