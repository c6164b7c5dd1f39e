// Selective scan checks beyond the registry ones: (4) chunk == step == reference, (5) state
// continuity across calls, forward and backward (initial-state gradients carried), shape
// validation, and long sequences with extreme step sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"
#include "ops/ssm/selective_scan/selective_scan.h"
#include "vec_checks.h"

namespace speedlm::ops {
namespace {

using P = SelectiveScanParams;
using D = SelectiveScanDims;
using testing::concat;
using testing::finite;
using testing::rel;
using Vec = testing::Vec;

struct Inputs {
  D d;
  Vec u, delta, A, Bm, Cm, Dskip, h0, d_y, d_ht;
  Inputs(D dd, uint64_t seed, float dt_lo = 0.01f, float dt_hi = 0.5f) : d(dd) {
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
    u = normal(d.B * d.T * d.D);
    delta = uniform(d.B * d.T * d.D, dt_lo, dt_hi);
    A = uniform(d.D * d.N, -3.0f, -0.1f);
    Bm = normal(d.B * d.T * d.N);
    Cm = normal(d.B * d.T * d.N);
    Dskip = normal(d.D);
    h0 = normal(d.B * d.D * d.N);
    d_y = normal(d.B * d.T * d.D);
    d_ht = normal(d.B * d.D * d.N);
  }
};

struct Out {
  Vec y, ht;
};

Out run(const Inputs& in, const std::string& form) {
  const D& d = in.d;
  const P p{.chunk = 16};
  Out r{Vec(d.B * d.T * d.D), Vec(in.h0)};
  if (form == "chunk") {
    selective_scan_chunk_fwd(p, d, in.u.data(), in.delta.data(), in.A.data(), in.Bm.data(), in.Cm.data(),
                             in.Dskip.data(), in.h0.data(), r.y.data(), r.ht.data());
  } else if (form == "step") {
    selective_scan_step_fwd(p, d, in.u.data(), in.delta.data(), in.A.data(), in.Bm.data(), in.Cm.data(),
                            in.Dskip.data(), r.ht.data(), r.y.data());
  } else {
    auto dbl = [](const Vec& x) { return std::vector<double>(x.begin(), x.end()); };
    std::vector<double> y(r.y.size()), ht(r.ht.size());
    selective_scan_ref_fwd(p, d, dbl(in.u).data(), dbl(in.delta).data(), dbl(in.A).data(), dbl(in.Bm).data(),
                           dbl(in.Cm).data(), dbl(in.Dskip).data(), dbl(in.h0).data(), y.data(), ht.data());
    r.y.assign(y.begin(), y.end());
    r.ht.assign(ht.begin(), ht.end());
  }
  return r;
}

struct Grads {
  Vec du, ddelta, dA, dB, dC, dD, dh0;
  explicit Grads(const D& d)
      : du(d.B * d.T * d.D), ddelta(du.size()), dA(d.D * d.N), dB(d.B * d.T * d.N), dC(dB.size()), dD(d.D),
        dh0(d.B * d.D * d.N) {}
};

Grads run_bwd(const Inputs& in, bool chunk) {
  Grads g(in.d);
  const P p{.chunk = 16};
  SelectiveScanGrads<float> ptrs{g.du.data(), g.ddelta.data(), g.dA.data(), g.dB.data(),
                                 g.dC.data(), g.dD.data(),     g.dh0.data()};
  auto bwd = chunk ? selective_scan_chunk_bwd : selective_scan_step_bwd;
  bwd(p, in.d, in.u.data(), in.delta.data(), in.A.data(), in.Bm.data(), in.Cm.data(), in.Dskip.data(),
      in.h0.data(), in.d_y.data(), in.d_ht.data(), ptrs);
  return g;
}

// Tokens [t0, t0 + n) of a B = 1 input, with the given initial state and state cotangent.
Inputs slice(const Inputs& in, int64_t t0, int64_t n, const Vec& h0, const Vec& d_ht) {
  Inputs s = in;
  s.d.T = n;
  auto cut = [&](const Vec& x, int64_t per) { return Vec(x.begin() + t0 * per, x.begin() + (t0 + n) * per); };
  s.u = cut(in.u, in.d.D), s.delta = cut(in.delta, in.d.D), s.d_y = cut(in.d_y, in.d.D);
  s.Bm = cut(in.Bm, in.d.N), s.Cm = cut(in.Cm, in.d.N);
  s.h0 = h0, s.d_ht = d_ht;
  return s;
}

Vec add(const Vec& a, const Vec& b) {
  Vec r = a;
  for (size_t i = 0; i < r.size(); ++i) r[i] += b[i];
  return r;
}

TEST(SelectiveScan, ChunkEqualsStepEqualsReference) {
  Inputs in(D{.B = 2, .T = 150, .D = 37, .N = 16}, 1);
  Out ref = run(in, "ref"), ch = run(in, "chunk"), st = run(in, "step");
  EXPECT_LE(rel(ch.y, ref.y), 1e-5);
  EXPECT_LE(rel(st.y, ref.y), 1e-5);
  EXPECT_LE(rel(ch.y, st.y), 1e-5);
  EXPECT_LE(rel(ch.ht, ref.ht), 1e-5);
  EXPECT_LE(rel(st.ht, ref.ht), 1e-5);
}

TEST(SelectiveScan, StateCarriesAcrossCalls) {
  Inputs in(D{.B = 1, .T = 150, .D = 20, .N = 8}, 2);
  for (const char* form : {"chunk", "step"}) {
    SCOPED_TRACE(form);
    Out whole = run(in, form);
    Out a = run(slice(in, 0, 70, in.h0, in.d_ht), form);
    Out b = run(slice(in, 70, 80, a.ht, in.d_ht), form);
    EXPECT_LE(rel(concat(a.y, b.y), whole.y), 1e-6);
    EXPECT_LE(rel(b.ht, whole.ht), 1e-6);
  }
}

TEST(SelectiveScan, InitialStateGradientCarriesAcrossCalls) {
  Inputs in(D{.B = 1, .T = 150, .D = 20, .N = 8}, 3);
  for (bool chunk : {true, false}) {
    SCOPED_TRACE(chunk ? "chunk" : "step");
    Grads whole = run_bwd(in, chunk);
    Out a = run(slice(in, 0, 70, in.h0, in.d_ht), chunk ? "chunk" : "step");
    Grads gb = run_bwd(slice(in, 70, 80, a.ht, in.d_ht), chunk);
    Grads ga = run_bwd(slice(in, 0, 70, in.h0, gb.dh0), chunk);
    EXPECT_LE(rel(ga.dh0, whole.dh0), 1e-5);
    EXPECT_LE(rel(concat(ga.du, gb.du), whole.du), 1e-5);
    EXPECT_LE(rel(concat(ga.ddelta, gb.ddelta), whole.ddelta), 1e-5);
    EXPECT_LE(rel(concat(ga.dB, gb.dB), whole.dB), 1e-5);
    EXPECT_LE(rel(concat(ga.dC, gb.dC), whole.dC), 1e-5);
    // Parameters shared by both calls: their gradients add up.
    EXPECT_LE(rel(add(ga.dA, gb.dA), whole.dA), 1e-5);
    EXPECT_LE(rel(add(ga.dD, gb.dD), whole.dD), 1e-5);
  }
}

TEST(SelectiveScan, ChunkBackwardMatchesStepBackward) {
  Inputs in(D{.B = 2, .T = 200, .D = 40, .N = 16}, 4);
  Grads c = run_bwd(in, true), s = run_bwd(in, false);
  for (auto [a, b] : {std::pair{&c.du, &s.du}, {&c.ddelta, &s.ddelta}, {&c.dA, &s.dA}, {&c.dB, &s.dB},
                      {&c.dC, &s.dC}, {&c.dD, &s.dD}, {&c.dh0, &s.dh0}})
    EXPECT_LE(rel(*a, *b), 1e-5);
}

// The training pair (forward keeps the checkpoints, backward reads them) gives exactly the plain
// pair's outputs and gradients (a partial channel block and a partial last segment included).
TEST(SelectiveScan, CheckpointedPairEqualsPlainPair) {
  Inputs in(D{.B = 2, .T = 75, .D = 70, .N = 16}, 5);
  const D& d = in.d;
  const P p{.chunk = 16};
  Out o{Vec(d.B * d.T * d.D), Vec(in.h0)};
  Vec ckpt(selective_scan_chunk_ckpt_floats(p, d), std::nanf(""));
  selective_scan_chunk_fwd_ckpt(p, d, in.u.data(), in.delta.data(), in.A.data(), in.Bm.data(), in.Cm.data(),
                                in.Dskip.data(), in.h0.data(), o.y.data(), o.ht.data(), ckpt.data());
  Grads g(d);
  selective_scan_chunk_bwd_ckpt(p, d, in.u.data(), in.delta.data(), in.A.data(), in.Bm.data(), in.Cm.data(),
                                in.Dskip.data(), in.h0.data(), in.d_y.data(), in.d_ht.data(),
                                {g.du.data(), g.ddelta.data(), g.dA.data(), g.dB.data(), g.dC.data(), g.dD.data(),
                                 g.dh0.data()},
                                ckpt.data());
  const Out plain = run(in, "chunk");
  const Grads gp = run_bwd(in, true);
  EXPECT_EQ(o.y, plain.y);
  EXPECT_EQ(o.ht, plain.ht);
  for (auto [a, b] : {std::pair{&g.du, &gp.du}, {&g.ddelta, &gp.ddelta}, {&g.dA, &gp.dA}, {&g.dB, &gp.dB},
                      {&g.dC, &gp.dC}, {&g.dD, &gp.dD}, {&g.dh0, &gp.dh0}})
    EXPECT_EQ(*a, *b);
}

// Step sizes so large the state forgets within one token, and so small it never forgets.
TEST(SelectiveScan, LongSequencesWithExtremeStepsStayFinite) {
  for (auto [lo, hi] : {std::pair{20.0f, 50.0f}, {1e-5f, 1e-4f}}) {
    SCOPED_TRACE(::testing::Message() << "delta=U(" << lo << "," << hi << ")");
    Inputs in(D{.B = 1, .T = 8192, .D = 16, .N = 16}, 5, lo, hi);
    Out ch = run(in, "chunk"), st = run(in, "step");
    ASSERT_TRUE(finite(ch.y) && finite(ch.ht));
    EXPECT_LE(rel(ch.y, st.y), 1e-5);
    Grads g = run_bwd(in, true);
    for (const Vec* x : {&g.du, &g.ddelta, &g.dA, &g.dB, &g.dC, &g.dD, &g.dh0}) EXPECT_TRUE(finite(*x));
  }
}

TEST(SelectiveScan, CheckNamesTheField) {
  EXPECT_TRUE(selective_scan_check(P{}, D{.B = 1, .T = 0, .D = 4, .N = 4}).is_ok());
  EXPECT_EQ(selective_scan_check(P{}, D{.B = 1, .T = 5, .D = 4, .N = 0}).message(),
            "[selective_scan] state_dim = 0: must be >= 1");
  EXPECT_EQ(selective_scan_check(P{.chunk = 0}, D{.B = 1, .T = 5, .D = 4, .N = 4}).message(),
            "[selective_scan] chunk = 0: must be >= 1");
}

}  // namespace
}  // namespace speedlm::ops
