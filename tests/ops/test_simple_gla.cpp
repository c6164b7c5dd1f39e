// simple_gla checks 4 and 5 (chunk == step == reference, split-sequence continuity with
// carried state and its gradients), strong decay, the g = 0 (linear attention) and fixed
// per-head decay (retention) special cases, and argument validation.
#include <gtest/gtest.h>

#include "linear_op_checks.h"
#include "ops/linear/simple_gla/simple_gla.h"

namespace speedlm::ops {
namespace {

using namespace testing;

std::vector<double> to_d(const Vec& x) { return {x.begin(), x.end()}; }
Vec to_f(const std::vector<double>& x) { return {x.begin(), x.end()}; }

struct SimpleGlaOp {
  static int64_t gate_row(int64_t H, int64_t) { return H; }
  static SimpleGlaDims dims(const LinearInputs& in) { return {in.B, in.T, in.H, in.K, in.V}; }
  static LinearOut fwd_chunk(const LinearInputs& in, int64_t chunk) {
    LinearOut r{Vec(in.B * in.T * in.H * in.V), Vec(in.h0.size())};
    simple_gla_chunk_fwd({0.0f, chunk}, dims(in), in.q.data(), in.k.data(), in.v.data(), in.g.data(), in.h0.data(),
                         r.o.data(), r.ht.data());
    return r;
  }
  static LinearOut fwd_step(const LinearInputs& in) {
    LinearOut r{Vec(in.B * in.T * in.H * in.V), in.h0};
    simple_gla_step_fwd({}, dims(in), in.q.data(), in.k.data(), in.v.data(), in.g.data(), r.ht.data(), r.o.data());
    return r;
  }
  static LinearOut fwd_ref(const LinearInputs& in) {
    std::vector<double> o(in.B * in.T * in.H * in.V), ht(in.h0.size());
    simple_gla_ref_fwd<double>({}, dims(in), to_d(in.q).data(), to_d(in.k).data(), to_d(in.v).data(),
                               to_d(in.g).data(), to_d(in.h0).data(), o.data(), ht.data());
    return {to_f(o), to_f(ht)};
  }
  static LinearGrads bwd_chunk(const LinearInputs& in, int64_t chunk, const Vec& d_o, const Vec& d_ht) {
    LinearGrads r{Vec(in.q.size()), Vec(in.k.size()), Vec(in.v.size()), Vec(in.g.size()), Vec(in.h0.size())};
    simple_gla_chunk_bwd({0.0f, chunk}, dims(in), in.q.data(), in.k.data(), in.v.data(), in.g.data(), in.h0.data(),
                         d_o.data(), d_ht.data(), r.dq.data(), r.dk.data(), r.dv.data(), r.dg.data(), r.dh0.data());
    return r;
  }
  static LinearGrads bwd_ref(const LinearInputs& in, const Vec& d_o, const Vec& d_ht) {
    std::vector<double> dq(in.q.size()), dk(in.k.size()), dv(in.v.size()), dg(in.g.size()), dh0(in.h0.size());
    simple_gla_ref_bwd<double>({}, dims(in), to_d(in.q).data(), to_d(in.k).data(), to_d(in.v).data(),
                               to_d(in.g).data(), to_d(in.h0).data(), to_d(d_o).data(), to_d(d_ht).data(), dq.data(),
                               dk.data(), dv.data(), dg.data(), dh0.data());
    return {to_f(dq), to_f(dk), to_f(dv), to_f(dg), to_f(dh0)};
  }
};

TEST(SimpleGla, ChunkEqualsStepEqualsReference) {
  check_chunk_step_ref<SimpleGlaOp>(-1.0f, 0.0f, 130, 1);
  check_chunk_step_ref<SimpleGlaOp>(-0.05f, 0.0f, 200, 2);
}

TEST(SimpleGla, SplitSequenceContinuity) {
  check_split_continuity<SimpleGlaOp>(150, 61, 3);
  check_split_continuity<SimpleGlaOp>(150, 64, 4);
  check_split_continuity<SimpleGlaOp>(20, 1, 5);
}

TEST(SimpleGla, StrongDecayStaysFinite) { check_strong_decay<SimpleGlaOp>(6); }

// g = 0 through a null gate equals explicit zero gates (linear attention); a constant gate per
// head is retention, S_t = gamma S_{t-1} + k v^T, checked against the closed form at T = 2.
TEST(SimpleGla, LinearAttentionAndRetentionSpecialCases) {
  LinearInputs in = LinearInputs::make(1, 70, 2, 8, 8, 2, 0.0f, 0.0f, 7);
  LinearOut zero = SimpleGlaOp::fwd_chunk(in, 32);
  LinearOut none{Vec(in.o_size()), Vec(in.h0.size())};
  simple_gla_chunk_fwd({0.0f, 32}, SimpleGlaOp::dims(in), in.q.data(), in.k.data(), in.v.data(), nullptr,
                       in.h0.data(), none.o.data(), none.ht.data());
  EXPECT_LE(rms_rel(none.o, zero.o), 1e-6);
  EXPECT_LE(rms_rel(none.ht, zero.ht), 1e-6);

  const float gamma = 0.75f;
  SimpleGlaDims d{1, 2, 1, 1, 1};
  float q[2] = {1.0f, 2.0f}, k[2] = {3.0f, 5.0f}, v[2] = {7.0f, 11.0f}, g[2] = {std::log(gamma), std::log(gamma)};
  float h0 = 13.0f, o[2], ht;
  simple_gla_chunk_fwd({1.0f, 64}, d, q, k, v, g, &h0, o, &ht);
  const float s0 = gamma * h0 + k[0] * v[0], s1 = gamma * s0 + k[1] * v[1];
  EXPECT_NEAR(o[0], q[0] * s0, 1e-4f);
  EXPECT_NEAR(o[1], q[1] * s1, 1e-3f);
  EXPECT_NEAR(ht, s1, 1e-3f);
}

TEST(SimpleGla, CheckNamesTheField) {
  Status s = simple_gla_check({0.0f, 0}, {1, 4, 1, 8, 8});
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message().rfind("[simple_gla] chunk = 0", 0), 0u) << s.message();
  s = simple_gla_check({}, {1, 4, 1, 0, 8});
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message().rfind("[simple_gla] key_dim = 0", 0), 0u) << s.message();
  EXPECT_TRUE(simple_gla_check({}, {1, 0, 1, 8, 8}).is_ok());
}

}  // namespace
}  // namespace speedlm::ops
