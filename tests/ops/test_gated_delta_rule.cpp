// Gated delta rule checks beyond the registry ones: (4) chunk == step == reference, (5) state
// continuity across calls, forward and backward (initial-state gradients carried), delta_rule as
// the g = 0 case, shape validation, and long sequences with extreme gates.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "ops/linear/delta_rule/delta_rule.h"
#include "ops/linear/gated_delta_rule/gated_delta_rule.h"
#include "vec_checks.h"

namespace speedlm::ops {
namespace {

using P = GatedDeltaRuleParams;
using D = GatedDeltaRuleDims;
using testing::concat;
using testing::finite;
using testing::rel;
using Vec = testing::Vec;

// Inputs of one sequence batch; keys L2-normalised (the op's contract).
struct Inputs {
  D d;
  Vec q, k, v, beta, g, h0, d_o, d_ht;
  Inputs(D dd, uint64_t seed, float g_lo = -0.3f, float g_hi = 0.0f, float b_lo = 0.0f, float b_hi = 1.0f) : d(dd) {
    Rng rng(seed);
    auto normal = [&](int64_t n) {
      Vec x(n);
      for (float& e : x) e = rng.normal();
      return x;
    };
    auto uniform = [&](int64_t n, float lo, float hi) {
      Vec x(n);
      for (float& e : x) e = lo + (hi - lo) * rng.uniform();
      return x;
    };
    q = normal(d.B * d.T * d.H * d.K);
    k = normal(d.B * d.T * d.H * d.K);
    for (int64_t r = 0; r < d.B * d.T * d.H; ++r) {
      double s = 0.0;
      for (int64_t i = 0; i < d.K; ++i) s += k[r * d.K + i] * k[r * d.K + i];
      for (int64_t i = 0; i < d.K; ++i) k[r * d.K + i] /= static_cast<float>(std::sqrt(s));
    }
    v = normal(d.B * d.T * d.H * d.V);
    beta = uniform(d.B * d.T * d.H, b_lo, b_hi);
    g = uniform(d.B * d.T * d.H, g_lo, g_hi);
    h0 = normal(d.B * d.H * d.K * d.V);
    d_o = normal(d.B * d.T * d.H * d.V);
    d_ht = normal(d.B * d.H * d.K * d.V);
  }
};

struct Out {
  Vec o, ht;
};

Out run(const P& p, const Inputs& in, const char* form) {
  const D& d = in.d;
  Out r{Vec(d.B * d.T * d.H * d.V), Vec(in.h0)};
  if (std::string(form) == "chunk") {
    gated_delta_rule_chunk_fwd(p, d, in.q.data(), in.k.data(), in.v.data(), in.beta.data(), in.g.data(), in.h0.data(),
                               r.o.data(), r.ht.data());
  } else if (std::string(form) == "step") {
    gated_delta_rule_step_fwd(p, d, in.q.data(), in.k.data(), in.v.data(), in.beta.data(), in.g.data(), r.ht.data(),
                              r.o.data());
  } else {
    auto dbl = [](const Vec& x) { return std::vector<double>(x.begin(), x.end()); };
    std::vector<double> o(r.o.size()), ht(r.ht.size());
    gated_delta_rule_ref_fwd(p, d, dbl(in.q).data(), dbl(in.k).data(), dbl(in.v).data(), dbl(in.beta).data(),
                             dbl(in.g).data(), dbl(in.h0).data(), o.data(), ht.data());
    r.o.assign(o.begin(), o.end());
    r.ht.assign(ht.begin(), ht.end());
  }
  return r;
}

struct Grads {
  Vec dq, dk, dv, dbeta, dg, dh0;
  explicit Grads(const D& d)
      : dq(d.B * d.T * d.H * d.K), dk(dq.size()), dv(d.B * d.T * d.H * d.V), dbeta(d.B * d.T * d.H), dg(dbeta.size()),
        dh0(d.B * d.H * d.K * d.V) {}
  GatedDeltaRuleGradsF ptrs() { return {dq.data(), dk.data(), dv.data(), dbeta.data(), dg.data(), dh0.data()}; }
};

Grads run_bwd(const P& p, const Inputs& in, bool chunk) {
  Grads gr(in.d);
  auto bwd = chunk ? gated_delta_rule_chunk_bwd : gated_delta_rule_step_bwd;
  bwd(p, in.d, in.q.data(), in.k.data(), in.v.data(), in.beta.data(), in.g.data(), in.h0.data(), in.d_o.data(),
      in.d_ht.data(), gr.ptrs());
  return gr;
}

// Tokens [t0, t0 + n) of a B = 1 input, with the given initial state and state cotangent.
Inputs slice(const Inputs& in, int64_t t0, int64_t n, const Vec& h0, const Vec& d_ht) {
  Inputs s = in;
  const D& d = in.d;
  s.d.T = n;
  auto cut = [&](const Vec& x, int64_t per) { return Vec(x.begin() + t0 * per, x.begin() + (t0 + n) * per); };
  s.q = cut(in.q, d.H * d.K), s.k = cut(in.k, d.H * d.K), s.v = cut(in.v, d.H * d.V);
  s.beta = cut(in.beta, d.H), s.g = cut(in.g, d.H), s.d_o = cut(in.d_o, d.H * d.V);
  s.h0 = h0, s.d_ht = d_ht;
  return s;
}

TEST(GatedDeltaRule, ChunkEqualsStepEqualsReference) {
  for (int64_t chunk : {16, 64}) {
    const P p{.chunk = chunk};
    Inputs in(D{.B = 2, .T = 150, .H = 2, .K = 16, .V = 12}, 1);
    Out ref = run(p, in, "ref"), ch = run(p, in, "chunk"), st = run(p, in, "step");
    EXPECT_LE(rel(ch.o, ref.o), 1e-5);
    EXPECT_LE(rel(st.o, ref.o), 1e-5);
    EXPECT_LE(rel(ch.o, st.o), 1e-5);
    EXPECT_LE(rel(ch.ht, ref.ht), 1e-5);
    EXPECT_LE(rel(st.ht, ref.ht), 1e-5);
  }
}

TEST(GatedDeltaRule, StateCarriesAcrossCalls) {
  const P p{.chunk = 32};
  Inputs in(D{.B = 1, .T = 150, .H = 2, .K = 16, .V = 8}, 2);
  for (const char* form : {"chunk", "step"}) {
    SCOPED_TRACE(form);
    Out whole = run(p, in, form);
    // 70 is not a multiple of the chunk: the second call's chunks are shifted.
    Out a = run(p, slice(in, 0, 70, in.h0, in.d_ht), form);
    Out b = run(p, slice(in, 70, 80, a.ht, in.d_ht), form);
    EXPECT_LE(rel(concat(a.o, b.o), whole.o), 1e-5);
    EXPECT_LE(rel(b.ht, whole.ht), 1e-5);
  }
}

// Backward continuity: the second call's dh0 is the first call's state cotangent; together they
// give the one-call gradients, initial-state gradient included.
TEST(GatedDeltaRule, InitialStateGradientCarriesAcrossCalls) {
  const P p{.chunk = 32};
  Inputs in(D{.B = 1, .T = 150, .H = 2, .K = 16, .V = 8}, 3);
  for (bool chunk : {true, false}) {
    SCOPED_TRACE(chunk ? "chunk" : "step");
    Grads whole = run_bwd(p, in, chunk);
    Out a = run(p, slice(in, 0, 70, in.h0, in.d_ht), chunk ? "chunk" : "step");
    Grads gb = run_bwd(p, slice(in, 70, 80, a.ht, in.d_ht), chunk);
    Grads ga = run_bwd(p, slice(in, 0, 70, in.h0, gb.dh0), chunk);
    EXPECT_LE(rel(ga.dh0, whole.dh0), 1e-5);
    EXPECT_LE(rel(concat(ga.dq, gb.dq), whole.dq), 1e-5);
    EXPECT_LE(rel(concat(ga.dk, gb.dk), whole.dk), 1e-5);
    EXPECT_LE(rel(concat(ga.dv, gb.dv), whole.dv), 1e-5);
    EXPECT_LE(rel(concat(ga.dbeta, gb.dbeta), whole.dbeta), 1e-5);
    EXPECT_LE(rel(concat(ga.dg, gb.dg), whole.dg), 1e-5);
  }
}

TEST(GatedDeltaRule, ChunkBackwardMatchesStepBackward) {
  const P p{.chunk = 64};
  Inputs in(D{.B = 1, .T = 300, .H = 2, .K = 32, .V = 32}, 4);
  Grads c = run_bwd(p, in, true), s = run_bwd(p, in, false);
  EXPECT_LE(rel(c.dq, s.dq), 1e-4);
  EXPECT_LE(rel(c.dk, s.dk), 1e-4);
  EXPECT_LE(rel(c.dv, s.dv), 1e-4);
  EXPECT_LE(rel(c.dbeta, s.dbeta), 1e-4);
  EXPECT_LE(rel(c.dg, s.dg), 1e-4);
  EXPECT_LE(rel(c.dh0, s.dh0), 1e-4);
}

TEST(GatedDeltaRule, DeltaRuleIsTheZeroGateCase) {
  const P p{.chunk = 16};
  Inputs in(D{.B = 1, .T = 40, .H = 2, .K = 8, .V = 8}, 5, 0.0f, 0.0f);
  Out gated = run(p, in, "chunk");
  Vec o(gated.o.size()), ht(gated.ht.size());
  delta_rule_chunk_fwd(p, in.d, in.q.data(), in.k.data(), in.v.data(), in.beta.data(), in.h0.data(), o.data(),
                       ht.data());
  EXPECT_EQ(o, gated.o);
  EXPECT_EQ(ht, gated.ht);
}

// Long sequences: beta in {0, 1}, decays of e^-50 per token and no decay at all.
TEST(GatedDeltaRule, LongSequencesWithExtremeGatesStayFinite) {
  const P p{.chunk = 64};
  struct Case {
    float g_lo, g_hi, b_lo, b_hi;
  };
  for (Case c : {Case{-50.0f, -50.0f, 1.0f, 1.0f}, Case{0.0f, 0.0f, 1.0f, 1.0f}, Case{0.0f, 0.0f, 0.0f, 0.0f},
                 Case{-1e-3f, 0.0f, 0.0f, 1.0f}}) {
    SCOPED_TRACE(::testing::Message() << "g=U(" << c.g_lo << "," << c.g_hi << ") beta=U(" << c.b_lo << "," << c.b_hi
                                      << ")");
    Inputs in(D{.B = 1, .T = 4096, .H = 1, .K = 32, .V = 32}, 6, c.g_lo, c.g_hi, c.b_lo, c.b_hi);
    Out ch = run(p, in, "chunk"), st = run(p, in, "step");
    ASSERT_TRUE(finite(ch.o) && finite(ch.ht));
    EXPECT_LE(rel(ch.o, st.o), 1e-4);
    Grads gc = run_bwd(p, in, true);
    for (const Vec* x : {&gc.dq, &gc.dk, &gc.dv, &gc.dbeta, &gc.dg, &gc.dh0}) EXPECT_TRUE(finite(*x));
  }
}

TEST(GatedDeltaRule, CheckNamesTheField) {
  EXPECT_TRUE(gated_delta_rule_check(P{}, D{.B = 1, .T = 0, .H = 1, .K = 4, .V = 4}).is_ok());
  Status s = gated_delta_rule_check(P{}, D{.B = 1, .T = 5, .H = 1, .K = 0, .V = 4});
  EXPECT_EQ(s.message(), "[gated_delta_rule] key_dim = 0: must be >= 1");
  s = gated_delta_rule_check(P{.chunk = 0}, D{.B = 1, .T = 5, .H = 1, .K = 4, .V = 4});
  EXPECT_EQ(s.message(), "[gated_delta_rule] chunk = 0: must be in [1, 128]");
  s = delta_rule_check(P{}, D{.B = 1, .T = -1, .H = 1, .K = 4, .V = 4});
  EXPECT_EQ(s.message(), "[delta_rule] T = -1: must be >= 0");
}

}  // namespace
}  // namespace speedlm::ops
