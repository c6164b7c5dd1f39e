#include "ops/nn/embedding/embedding.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

OpCase embedding_case(int64_t N, int64_t V, int64_t D, bool extreme) {
  OpCase c;
  c.label = fmt::format("N={} V={} D={}", N, V, D);
  c.extreme = extreme;
  c.inputs = {{"ids", {N}, InputSpec::Kind::Index, 0.0, static_cast<double>(V), false}, {"weight", {V, D}}};
  c.ref_fwd = [=](const DBufs& in) {
    DBuf out({N, D});
    embedding_ref_fwd<double>(to_i32_values(in[0]).data(), N, in[1].v.data(), D, out.v.data());
    return DBufs{out};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBuf d_weight({V, D});
    embedding_ref_bwd<double>(to_i32_values(in[0]).data(), N, dout[0].v.data(), D, d_weight.v.data());
    return DBufs{DBuf(), d_weight};
  };
  OpForm fast;
  fast.name = "fast";
  fast.fwd = [=](const Tensors& in) {
    Tensor out = Tensor::empty({N, D});
    embedding_fast_fwd(in[0].i32(), N, in[1].f32(), D, out.f32());
    return Tensors{out};
  };
  fast.bwd = [=](const Tensors& in, const Tensors& dout) {
    Tensor d_weight = Tensor::zeros({V, D});
    embedding_fast_bwd(in[0].i32(), N, dout[0].f32(), V, D, d_weight.f32());
    return Tensors{Tensor(), d_weight};
  };
  c.forms = {fast};
  return c;
}

}  // namespace

OpEntry embedding_registry_entry() {
  OpEntry e;
  e.name = "embedding";
  e.cases = [] {
    return std::vector<OpCase>{
        embedding_case(1, 5, 17, false),     embedding_case(7, 11, 63, false),  embedding_case(65, 100, 64, false),
        embedding_case(33, 50, 65, false),   embedding_case(2000, 300, 65, false), embedding_case(300, 4096, 1, false),
        // Many repeated ids: every row of d_weight sums hundreds of tokens; and no tokens at all.
        embedding_case(3000, 3, 64, true),   embedding_case(500, 1, 17, true),  embedding_case(0, 4, 8, true),
    };
  };
  return e;
}

}  // namespace speedlm::ops
