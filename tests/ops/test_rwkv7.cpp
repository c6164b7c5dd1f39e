// RWKV-7 checks beyond the registry ones: (4) chunk == step == reference, (5) state continuity
// across calls, forward and backward (initial-state gradients carried), both score paths of the
// chunk form (factorised and element-wise), shape validation, long sequences.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"
#include "ops/linear/rwkv7/rwkv7.h"
#include "vec_checks.h"

namespace speedlm::ops {
namespace {

using P = Rwkv7Params;
using D = Rwkv7Dims;
using testing::concat;
using testing::finite;
using testing::rel;
using Vec = testing::Vec;

// RWKV-7's structure: a = -kk, b = kk * iclr with kk L2-normalised per head and iclr in (0, 1).
struct Inputs {
  D d;
  Vec q, w, k, v, a, b, h0, d_o, d_ht;
  Inputs(D dd, uint64_t seed, float w_lo = -0.6065306597f, float w_hi = 0.0f) : d(dd) {
    Rng rng(seed);
    const int64_t nk = d.B * d.T * d.H * d.K, nv = d.B * d.T * d.H * d.V, nh = d.B * d.H * d.K * d.V;
    auto normal = [&](int64_t n, float s = 1.0f) {
      Vec x(n);
      for (float& e : x) e = s * rng.normal();
      return x;
    };
    q = normal(nk), k = normal(nk, 1.0f / std::sqrt(static_cast<float>(d.K))), v = normal(nv);
    w.resize(nk), a.resize(nk), b.resize(nk);
    for (float& e : w) e = w_lo + (w_hi - w_lo) * rng.uniform();
    for (int64_t r = 0; r < d.B * d.T * d.H; ++r) {
      Vec kk = normal(d.K);
      double s = 0.0;
      for (float e : kk) s += e * e;
      for (int64_t i = 0; i < d.K; ++i) {
        const float x = kk[i] / static_cast<float>(std::sqrt(s));
        a[r * d.K + i] = -x;
        b[r * d.K + i] = x * rng.uniform();
      }
    }
    h0 = normal(nh), d_o = normal(nv), d_ht = normal(nh);
  }
};

struct Out {
  Vec o, ht;
};

Out run(const P& p, const Inputs& in, const std::string& form) {
  const D& d = in.d;
  Out r{Vec(d.B * d.T * d.H * d.V), Vec(in.h0)};
  if (form == "chunk") {
    rwkv7_chunk_fwd(p, d, in.q.data(), in.w.data(), in.k.data(), in.v.data(), in.a.data(), in.b.data(),
                    in.h0.data(), r.o.data(), r.ht.data());
  } else if (form == "step") {
    rwkv7_step_fwd(p, d, in.q.data(), in.w.data(), in.k.data(), in.v.data(), in.a.data(), in.b.data(), r.ht.data(),
                   r.o.data());
  } else {
    auto dbl = [](const Vec& x) { return std::vector<double>(x.begin(), x.end()); };
    std::vector<double> o(r.o.size()), ht(r.ht.size());
    rwkv7_ref_fwd(p, d, dbl(in.q).data(), dbl(in.w).data(), dbl(in.k).data(), dbl(in.v).data(), dbl(in.a).data(),
                  dbl(in.b).data(), dbl(in.h0).data(), o.data(), ht.data());
    r.o.assign(o.begin(), o.end());
    r.ht.assign(ht.begin(), ht.end());
  }
  return r;
}

struct Grads {
  Vec dq, dw, dk, dv, da, db, dh0;
  explicit Grads(const D& d)
      : dq(d.B * d.T * d.H * d.K), dw(dq.size()), dk(dq.size()), dv(d.B * d.T * d.H * d.V), da(dq.size()),
        db(dq.size()), dh0(d.B * d.H * d.K * d.V) {}
  std::vector<Vec*> all() { return {&dq, &dw, &dk, &dv, &da, &db, &dh0}; }
};

Grads run_bwd(const P& p, const Inputs& in, bool chunk) {
  Grads g(in.d);
  Rwkv7Grads<float> ptrs{g.dq.data(), g.dw.data(), g.dk.data(), g.dv.data(), g.da.data(), g.db.data(), g.dh0.data()};
  auto bwd = chunk ? rwkv7_chunk_bwd : rwkv7_step_bwd;
  bwd(p, in.d, in.q.data(), in.w.data(), in.k.data(), in.v.data(), in.a.data(), in.b.data(), in.h0.data(),
      in.d_o.data(), in.d_ht.data(), ptrs);
  return g;
}

// Tokens [t0, t0 + n) of a B = 1 input, with the given initial state and state cotangent.
Inputs slice(const Inputs& in, int64_t t0, int64_t n, const Vec& h0, const Vec& d_ht) {
  Inputs s = in;
  const int64_t pk = in.d.H * in.d.K, pv = in.d.H * in.d.V;
  s.d.T = n;
  auto cut = [&](const Vec& x, int64_t per) { return Vec(x.begin() + t0 * per, x.begin() + (t0 + n) * per); };
  s.q = cut(in.q, pk), s.w = cut(in.w, pk), s.k = cut(in.k, pk), s.a = cut(in.a, pk), s.b = cut(in.b, pk);
  s.v = cut(in.v, pv), s.d_o = cut(in.d_o, pv);
  s.h0 = h0, s.d_ht = d_ht;
  return s;
}

// RWKV-7's decay range takes the factorised scores; decays down to e^-5 per token cross e^-80
// within a 32-token chunk and take the element-wise ones.
TEST(Rwkv7, ChunkEqualsStepEqualsReference) {
  for (float w_lo : {-0.6065306597f, -5.0f}) {
    SCOPED_TRACE(::testing::Message() << "w_lo=" << w_lo);
    const P p{.chunk = 32};
    Inputs in(D{.B = 2, .T = 150, .H = 2, .K = 16, .V = 12}, 1, w_lo);
    Out ref = run(p, in, "ref"), ch = run(p, in, "chunk"), st = run(p, in, "step");
    EXPECT_LE(rel(ch.o, ref.o), 1e-5);
    EXPECT_LE(rel(st.o, ref.o), 1e-5);
    EXPECT_LE(rel(ch.o, st.o), 1e-5);
    EXPECT_LE(rel(ch.ht, ref.ht), 1e-5);
    EXPECT_LE(rel(st.ht, ref.ht), 1e-5);
  }
}

TEST(Rwkv7, StateCarriesAcrossCalls) {
  const P p{.chunk = 32};
  Inputs in(D{.B = 1, .T = 150, .H = 2, .K = 16, .V = 8}, 2);
  for (const char* form : {"chunk", "step"}) {
    SCOPED_TRACE(form);
    Out whole = run(p, in, form);
    Out a = run(p, slice(in, 0, 70, in.h0, in.d_ht), form);
    Out b = run(p, slice(in, 70, 80, a.ht, in.d_ht), form);
    EXPECT_LE(rel(concat(a.o, b.o), whole.o), 1e-5);
    EXPECT_LE(rel(b.ht, whole.ht), 1e-5);
  }
}

TEST(Rwkv7, InitialStateGradientCarriesAcrossCalls) {
  const P p{.chunk = 32};
  Inputs in(D{.B = 1, .T = 150, .H = 2, .K = 16, .V = 8}, 3);
  for (bool chunk : {true, false}) {
    SCOPED_TRACE(chunk ? "chunk" : "step");
    Grads whole = run_bwd(p, in, chunk);
    Out a = run(p, slice(in, 0, 70, in.h0, in.d_ht), chunk ? "chunk" : "step");
    Grads gb = run_bwd(p, slice(in, 70, 80, a.ht, in.d_ht), chunk);
    Grads ga = run_bwd(p, slice(in, 0, 70, in.h0, gb.dh0), chunk);
    EXPECT_LE(rel(ga.dh0, whole.dh0), 1e-5);
    std::vector<Vec*> wa = ga.all(), wb = gb.all(), ww = whole.all();
    for (size_t i = 0; i + 1 < ww.size(); ++i) EXPECT_LE(rel(concat(*wa[i], *wb[i]), *ww[i]), 1e-5) << "grad " << i;
  }
}

TEST(Rwkv7, ChunkBackwardMatchesStepBackward) {
  for (float w_lo : {-0.6065306597f, -5.0f}) {
    SCOPED_TRACE(::testing::Message() << "w_lo=" << w_lo);
    const P p{.chunk = 32};
    Inputs in(D{.B = 1, .T = 200, .H = 2, .K = 32, .V = 32}, 4, w_lo);
    Grads c = run_bwd(p, in, true), s = run_bwd(p, in, false);
    std::vector<Vec*> gc = c.all(), gs = s.all();
    for (size_t i = 0; i < gc.size(); ++i) EXPECT_LE(rel(*gc[i], *gs[i]), 1e-4) << "grad " << i;
  }
}

TEST(Rwkv7, LongSequencesStayFinite) {
  const P p{.chunk = 32};
  for (auto [lo, hi] : {std::pair{-0.6065306597f, 0.0f}, {0.0f, 0.0f}, {-60.0f, -20.0f}}) {
    SCOPED_TRACE(::testing::Message() << "w=U(" << lo << "," << hi << ")");
    Inputs in(D{.B = 1, .T = 4096, .H = 1, .K = 32, .V = 32}, 5, lo, hi);
    Out ch = run(p, in, "chunk"), st = run(p, in, "step");
    ASSERT_TRUE(finite(ch.o) && finite(ch.ht));
    EXPECT_LE(rel(ch.o, st.o), 1e-4);
    Grads g = run_bwd(p, in, true);
    for (Vec* x : g.all()) EXPECT_TRUE(finite(*x));
  }
}

TEST(Rwkv7, CheckNamesTheField) {
  EXPECT_TRUE(rwkv7_check(P{}, D{.B = 1, .T = 0, .H = 1, .K = 4, .V = 4}).is_ok());
  EXPECT_EQ(rwkv7_check(P{}, D{.B = 1, .T = 5, .H = 0, .K = 4, .V = 4}).message(), "[rwkv7] heads = 0: must be >= 1");
  EXPECT_EQ(rwkv7_check(P{.chunk = 200}, D{.B = 1, .T = 5, .H = 1, .K = 4, .V = 4}).message(),
            "[rwkv7] chunk = 200: must be in [1, 128]");
}

}  // namespace
}  // namespace speedlm::ops
