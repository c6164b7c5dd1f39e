#include "ops/activation/swiglu/swiglu.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

OpCase swiglu_case(int64_t N, int64_t F, double scale, bool extreme) {
  OpCase c;
  c.label = fmt::format("N={} F={} gu in [-{:g}, {:g})", N, F, scale, scale);
  c.extreme = extreme;
  c.inputs = {{"gu", {N, 2 * F}, InputSpec::Kind::Uniform, -scale, scale}};
  c.ref_fwd = [=](const DBufs& in) {
    DBuf h({N, F});
    swiglu_ref_fwd<double>(in[0].v.data(), N, F, h.v.data());
    return DBufs{h};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBuf dgu({N, 2 * F});
    swiglu_ref_bwd<double>(in[0].v.data(), dout[0].v.data(), N, F, dgu.v.data());
    return DBufs{dgu};
  };
  OpForm fast;
  fast.name = "fast";
  fast.fwd = [=](const Tensors& in) {
    Tensor h = Tensor::empty({N, F});
    swiglu_fast_fwd(in[0].f32(), N, F, h.f32());
    return Tensors{h};
  };
  fast.bwd = [=](const Tensors& in, const Tensors& dout) {
    Tensor dgu = Tensor::empty({N, 2 * F});
    swiglu_fast_bwd(in[0].f32(), dout[0].f32(), N, F, dgu.f32());
    return Tensors{dgu};
  };
  c.forms = {fast};
  return c;
}

}  // namespace

OpEntry swiglu_registry_entry() {
  OpEntry e;
  e.name = "swiglu";
  e.cases = [] {
    return std::vector<OpCase>{
        swiglu_case(1, 17, 4, false),    swiglu_case(7, 63, 4, false),   swiglu_case(65, 64, 4, false),
        swiglu_case(33, 65, 4, false),   swiglu_case(1, 70001, 4, false), swiglu_case(257, 257, 4, false),
        // Gates up to |g| = 90: exp(-g) far outside [-87, 88] for the saturated half.
        swiglu_case(31, 65, 90, true),
    };
  };
  return e;
}

}  // namespace speedlm::ops
