// gla checks 4 and 5 (chunk == step == reference, split-sequence continuity with carried
// state and its gradients), strong decay, agreement with simple_gla when the per-channel gate
// is constant across channels, and argument validation.
#include <gtest/gtest.h>

#include "linear_op_checks.h"
#include "ops/linear/gla/gla.h"
#include "ops/linear/simple_gla/simple_gla.h"

namespace speedlm::ops {
namespace {

using namespace testing;

std::vector<double> to_d(const Vec& x) { return {x.begin(), x.end()}; }
Vec to_f(const std::vector<double>& x) { return {x.begin(), x.end()}; }

struct GlaOp {
  static int64_t gate_row(int64_t H, int64_t K) { return H * K; }
  static GlaDims dims(const LinearInputs& in) { return {in.B, in.T, in.H, in.K, in.V}; }
  static LinearOut fwd_chunk(const LinearInputs& in, int64_t chunk) {
    LinearOut r{Vec(in.B * in.T * in.H * in.V), Vec(in.h0.size())};
    gla_chunk_fwd({0.0f, chunk}, dims(in), in.q.data(), in.k.data(), in.v.data(), in.g.data(), in.h0.data(),
                         r.o.data(), r.ht.data());
    return r;
  }
  static LinearOut fwd_step(const LinearInputs& in) {
    LinearOut r{Vec(in.B * in.T * in.H * in.V), in.h0};
    gla_step_fwd({}, dims(in), in.q.data(), in.k.data(), in.v.data(), in.g.data(), r.ht.data(), r.o.data());
    return r;
  }
  static LinearOut fwd_ref(const LinearInputs& in) {
    std::vector<double> o(in.B * in.T * in.H * in.V), ht(in.h0.size());
    gla_ref_fwd<double>({}, dims(in), to_d(in.q).data(), to_d(in.k).data(), to_d(in.v).data(),
                               to_d(in.g).data(), to_d(in.h0).data(), o.data(), ht.data());
    return {to_f(o), to_f(ht)};
  }
  static LinearGrads bwd_chunk(const LinearInputs& in, int64_t chunk, const Vec& d_o, const Vec& d_ht) {
    LinearGrads r{Vec(in.q.size()), Vec(in.k.size()), Vec(in.v.size()), Vec(in.g.size()), Vec(in.h0.size())};
    gla_chunk_bwd({0.0f, chunk}, dims(in), in.q.data(), in.k.data(), in.v.data(), in.g.data(), in.h0.data(),
                         d_o.data(), d_ht.data(), r.dq.data(), r.dk.data(), r.dv.data(), r.dg.data(), r.dh0.data());
    return r;
  }
  static LinearGrads bwd_ref(const LinearInputs& in, const Vec& d_o, const Vec& d_ht) {
    std::vector<double> dq(in.q.size()), dk(in.k.size()), dv(in.v.size()), dg(in.g.size()), dh0(in.h0.size());
    gla_ref_bwd<double>({}, dims(in), to_d(in.q).data(), to_d(in.k).data(), to_d(in.v).data(),
                               to_d(in.g).data(), to_d(in.h0).data(), to_d(d_o).data(), to_d(d_ht).data(), dq.data(),
                               dk.data(), dv.data(), dg.data(), dh0.data());
    return {to_f(dq), to_f(dk), to_f(dv), to_f(dg), to_f(dh0)};
  }
};

TEST(Gla, ChunkEqualsStepEqualsReference) {
  check_chunk_step_ref<GlaOp>(-1.0f, 0.0f, 130, 1);
  check_chunk_step_ref<GlaOp>(-0.05f, 0.0f, 200, 2);
}

TEST(Gla, SplitSequenceContinuity) {
  check_split_continuity<GlaOp>(150, 61, 3);
  check_split_continuity<GlaOp>(150, 64, 4);
  check_split_continuity<GlaOp>(20, 1, 5);
}

TEST(Gla, StrongDecayStaysFinite) { check_strong_decay<GlaOp>(6); }

// A gate equal across key channels is simple_gla's scalar gate.
TEST(Gla, ChannelConstantGateEqualsSimpleGla) {
  LinearInputs in = LinearInputs::make(1, 100, 2, 8, 8, 2 * 8, 0.0f, 0.0f, 7);
  Vec g_head = uniform(100 * 2, 8, -1.0f, 0.0f);
  for (int64_t i = 0; i < 100 * 2; ++i)
    for (int64_t kk = 0; kk < 8; ++kk) in.g[i * 8 + kk] = g_head[i];
  LinearOut gla = GlaOp::fwd_chunk(in, 64);
  LinearOut simple{Vec(in.o_size()), Vec(in.h0.size())};
  simple_gla_chunk_fwd({0.0f, 64}, {1, 100, 2, 8, 8}, in.q.data(), in.k.data(), in.v.data(), g_head.data(),
                       in.h0.data(), simple.o.data(), simple.ht.data());
  EXPECT_LE(rms_rel(gla.o, simple.o), 1e-5);
  EXPECT_LE(rms_rel(gla.ht, simple.ht), 1e-5);
}

TEST(Gla, CheckNamesTheField) {
  Status s = gla_check({0.0f, 0}, {1, 4, 1, 8, 8});
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message().rfind("[gla] chunk = 0", 0), 0u) << s.message();
  s = gla_check({}, {1, 4, 1, 0, 8});
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message().rfind("[gla] key_dim = 0", 0), 0u) << s.message();
  EXPECT_TRUE(gla_check({}, {1, 0, 1, 8, 8}).is_ok());
}

}  // namespace
}  // namespace speedlm::ops
