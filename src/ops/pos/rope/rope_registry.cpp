#include "ops/pos/rope/rope.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

// "fast" writes a new tensor; "inplace" rotates a copy of its input in place (y aliasing x,
// dx aliasing dy), the way attention applies rope to q and k.
OpForm rope_form(const RopeParams& p, int64_t B, int64_t T, int64_t H, int64_t Dh, bool inplace) {
  OpForm f;
  f.name = inplace ? "inplace" : "fast";
  f.fwd = [=](const Tensors& in) {
    Tensor y = inplace ? in[0].clone() : Tensor::empty({B, T, H, Dh});
    rope_fast_fwd(p, inplace ? y.f32() : in[0].f32(), in[1].i32(), B, T, H, Dh, y.f32());
    return Tensors{y};
  };
  f.bwd = [=](const Tensors& in, const Tensors& dout) {
    Tensor dx = inplace ? dout[0].clone() : Tensor::empty({B, T, H, Dh});
    rope_fast_bwd(p, inplace ? dx.f32() : dout[0].f32(), in[1].i32(), B, T, H, Dh, dx.f32());
    return Tensors{dx, Tensor()};
  };
  return f;
}

OpCase rope_case(int64_t B, int64_t T, int64_t H, int64_t Dh, int64_t max_pos, float theta, bool extreme) {
  RopeParams p;
  p.theta = theta;
  OpCase c;
  c.label = fmt::format("B={} T={} H={} Dh={} pos<{} theta={:g}", B, T, H, Dh, max_pos, theta);
  c.extreme = extreme;
  c.inputs = {{"x", {B, T, H, Dh}},
              {"pos", {B, T}, InputSpec::Kind::Index, 0.0, static_cast<double>(max_pos), false}};
  c.ref_fwd = [=](const DBufs& in) {
    DBuf y({B, T, H, Dh});
    rope_ref_fwd<double>(p, in[0].v.data(), to_i32_values(in[1]).data(), B, T, H, Dh, y.v.data());
    return DBufs{y};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBuf dx({B, T, H, Dh});
    rope_ref_bwd<double>(p, dout[0].v.data(), to_i32_values(in[1]).data(), B, T, H, Dh, dx.v.data());
    return DBufs{dx, DBuf()};
  };
  c.forms = {rope_form(p, B, T, H, Dh, false), rope_form(p, B, T, H, Dh, true)};
  return c;
}

}  // namespace

OpEntry rope_registry_entry() {
  OpEntry e;
  e.name = "rope";
  e.cases = [] {
    return std::vector<OpCase>{
        rope_case(1, 1, 1, 2, 64, 1e4f, false),       rope_case(1, 7, 3, 18, 64, 1e4f, false),
        rope_case(2, 33, 4, 64, 4096, 1e4f, false),   rope_case(1, 65, 2, 130, 4096, 1e4f, false),
        rope_case(2, 250, 8, 64, 2048, 1e4f, false),
        // Positions up to 1e5 (angles up to 1e5 rad) and a Llama-3-style theta with longer contexts.
        rope_case(2, 17, 3, 128, 100001, 1e4f, true), rope_case(1, 63, 2, 64, 1000001, 5e5f, true),
    };
  };
  return e;
}

}  // namespace speedlm::ops
