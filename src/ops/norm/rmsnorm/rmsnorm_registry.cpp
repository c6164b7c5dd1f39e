#include "ops/norm/rmsnorm/rmsnorm.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

OpCase rmsnorm_case(int64_t N, int64_t D, double x_scale, bool extreme) {
  RmsNormParams p;
  OpCase c;
  c.label = fmt::format("N={} D={} |x|~{:g}", N, D, x_scale);
  c.extreme = extreme;
  c.inputs = {{"x", {N, D}, InputSpec::Kind::Normal, 0.0, x_scale}, {"w", {D}, InputSpec::Kind::Normal, 1.0, 0.5}};
  c.ref_fwd = [=](const DBufs& in) {
    DBuf y({N, D}), rstd({N});
    rmsnorm_ref_fwd<double>(p, in[0].v.data(), in[1].v.data(), N, D, y.v.data(), rstd.v.data());
    return DBufs{y};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBuf dx({N, D}), dw({D});
    rmsnorm_ref_bwd<double>(p, in[0].v.data(), in[1].v.data(), dout[0].v.data(), N, D, dx.v.data(), dw.v.data());
    return DBufs{dx, dw};
  };
  OpForm fast;
  fast.name = "fast";
  fast.fwd = [=](const Tensors& in) {
    Tensor y = Tensor::empty({N, D}), rstd = Tensor::empty({N});
    rmsnorm_fast_fwd(p, in[0].f32(), in[1].f32(), N, D, y.f32(), rstd.f32());
    return Tensors{y};
  };
  fast.bwd = [=](const Tensors& in, const Tensors& dout) {
    Tensor y = Tensor::empty({N, D}), rstd = Tensor::empty({N});
    rmsnorm_fast_fwd(p, in[0].f32(), in[1].f32(), N, D, y.f32(), rstd.f32());
    Tensor dx = Tensor::empty({N, D}), dw = Tensor::zeros({D});
    rmsnorm_fast_bwd(p, in[0].f32(), in[1].f32(), rstd.f32(), dout[0].f32(), N, D, dx.f32(), dw.f32());
    return Tensors{dx, dw};
  };
  c.forms = {fast};
  return c;
}

}  // namespace

OpEntry rmsnorm_registry_entry() {
  OpEntry e;
  e.name = "rmsnorm";
  e.cases = [] {
    return std::vector<OpCase>{
        rmsnorm_case(1, 17, 1, false),    rmsnorm_case(5, 1, 1, false),     rmsnorm_case(7, 63, 1, false),
        rmsnorm_case(65, 64, 1, false),   rmsnorm_case(33, 65, 1, false),   rmsnorm_case(2048, 65, 1, false),
        // mean(x^2) = 1e-8 << eps: eps dominates rstd; and x ~ 1e4, where mean(x^2) ~ 1e8.
        rmsnorm_case(9, 64, 1e-4, true), rmsnorm_case(9, 64, 1e4, true),
    };
  };
  return e;
}

}  // namespace speedlm::ops
