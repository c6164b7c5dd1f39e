// The flash form against the plain form and the reference beyond the registry checks: lse and
// d_sinks, tile edges, packed sequences against separate calls, determinism, and extra memory
// that grows linearly with T.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/rng.h"
#include "core/tensor_bytes.h"
#include "ops/attention/attention/attention.h"

namespace speedlm::ops {
namespace {

using D = AttentionDims;

std::vector<float> randn(int64_t n, uint64_t seed, float std = 1.0f) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& e : x) e = std * rng.normal();
  return x;
}

std::vector<double> as_double(const std::vector<float>& x) { return {x.begin(), x.end()}; }

double rms_rel(const std::vector<float>& a, const std::vector<double>& ref) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - ref[i]) * (a[i] - ref[i]), den += ref[i] * ref[i];
  return std::sqrt(num / std::max(den, 1e-300));
}

// Forward and backward of one form (or of the double reference) on the same inputs.
struct Outputs {
  std::vector<float> o, lse, dq, dk, dv, ds;
};

struct Problem {
  AttentionParams p;
  D d;
  std::vector<int32_t> cu;
  std::vector<float> q, k, v, d_o, sinks;

  Problem(const AttentionParams& params, D dims, bool with_sinks, std::vector<int32_t> cu_seqlens = {},
          float qk_std = 1.0f)
      : p(params), d(dims), cu(std::move(cu_seqlens)) {
    if (!cu.empty()) {
      d.B = 1;
      d.Tq = d.Tk = cu.back();
      d.seqs = static_cast<int64_t>(cu.size()) - 1;
      d.cu_seqlens = cu.data();
    }
    q = randn(nq(), 1, qk_std);
    k = randn(nk(), 2, qk_std);
    v = randn(nk(), 3);
    d_o = randn(nq(), 4);
    if (with_sinks) sinks = randn(d.H, 5);
  }
  int64_t nq() const { return d.B * d.Tq * d.H * d.Dh; }
  int64_t nk() const { return d.B * d.Tk * d.KVH * d.Dh; }
  const float* sink() const { return sinks.empty() ? nullptr : sinks.data(); }

  template <typename Fwd, typename Bwd>
  Outputs run(Fwd fwd, Bwd bwd) const {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    Outputs r{std::vector<float>(nq(), nan), std::vector<float>(d.B * d.H * d.Tq, nan), std::vector<float>(nq(), nan),
          std::vector<float>(nk(), nan), std::vector<float>(nk(), nan), std::vector<float>(sinks.size(), nan)};
    fwd(p, d, q.data(), k.data(), v.data(), r.o.data(), r.lse.data(), sink());
    bwd(p, d, q.data(), k.data(), v.data(), r.o.data(), r.lse.data(), d_o.data(), r.dq.data(), r.dk.data(),
        r.dv.data(), sink(), sinks.empty() ? nullptr : r.ds.data());
    return r;
  }
  Outputs flash() const { return run(attention_flash_fwd, attention_flash_bwd); }
  Outputs plain() const { return run(attention_plain_fwd, attention_plain_bwd); }
  std::vector<std::vector<double>> ref() const {
    auto qd = as_double(q), kd = as_double(k), vd = as_double(v), dod = as_double(d_o), sd = as_double(sinks);
    std::vector<double> o(nq()), lse(d.B * d.H * d.Tq), dq(nq()), dk(nk()), dv(nk()), ds(sinks.size());
    const double* s = sinks.empty() ? nullptr : sd.data();
    attention_ref_fwd<double>(p, d, qd.data(), kd.data(), vd.data(), o.data(), lse.data(), s);
    attention_ref_bwd<double>(p, d, qd.data(), kd.data(), vd.data(), dod.data(), dq.data(), dk.data(), dv.data(), s,
                              sinks.empty() ? nullptr : ds.data());
    return {o, lse, dq, dk, dv, ds};
  }
};

void expect_close(const Outputs& r, const std::vector<std::vector<double>>& ref, double fwd_tol, double bwd_tol) {
  EXPECT_LE(rms_rel(r.o, ref[0]), fwd_tol) << "o";
  EXPECT_LE(rms_rel(r.lse, ref[1]), fwd_tol) << "lse";
  EXPECT_LE(rms_rel(r.dq, ref[2]), bwd_tol) << "dq";
  EXPECT_LE(rms_rel(r.dk, ref[3]), bwd_tol) << "dk";
  EXPECT_LE(rms_rel(r.dv, ref[4]), bwd_tol) << "dv";
  if (!r.ds.empty()) {
    EXPECT_LE(rms_rel(r.ds, ref[5]), bwd_tol) << "d_sinks";
  }
}

std::vector<double> widen(const std::vector<float>& x) { return as_double(x); }

// Flash against the reference and against plain (the two f32 forms agree to rounding), lse and
// d_sinks included, for lengths around the 64-row tile and every variant.
TEST(AttentionFlash, MatchesReferenceAndPlainAroundTileEdges) {
  struct Case {
    bool causal;
    int64_t window;
    float softcap;
    bool sinks;
  };
  const Case variants[] = {{true, 0, 0.0f, false}, {false, 0, 0.0f, false}, {true, 33, 0.0f, true},
                           {true, 0, 3.0f, false}, {false, 17, 2.0f, true}};
  for (int64_t T : {1, 2, 63, 64, 65, 127, 129}) {
    for (const Case& c : variants) {
      SCOPED_TRACE(::testing::Message() << "T=" << T << " causal=" << c.causal << " window=" << c.window
                                        << " softcap=" << c.softcap << " sinks=" << c.sinks);
      AttentionParams p;
      p.causal = c.causal;
      p.window = c.window;
      p.softcap = c.softcap;
      const Problem pr(p, D{.B = 2, .Tq = T, .Tk = T, .H = 4, .KVH = 2, .Dh = 24}, c.sinks, {}, 2.0f);
      const Outputs f = pr.flash(), pl = pr.plain();
      expect_close(f, pr.ref(), 1e-5, 1e-4);
      expect_close(f, {widen(pl.o), widen(pl.lse), widen(pl.dq), widen(pl.dk), widen(pl.dv), widen(pl.ds)}, 1e-5,
                   1e-4);
    }
  }
}

// A query block after a cached prefix (Tq < Tk), with a window: decode-shaped calls.
TEST(AttentionFlash, QueryBlockAfterPrefix) {
  for (int64_t tq : {1, 7, 70}) {
    SCOPED_TRACE(tq);
    AttentionParams p;
    p.window = 50;
    const Problem pr(p, D{.B = 1, .Tq = tq, .Tk = 200, .H = 2, .KVH = 1, .Dh = 64}, true);
    expect_close(pr.flash(), pr.ref(), 1e-5, 1e-4);
  }
}

// Packed sequences give what separate calls per sequence give.
TEST(AttentionFlash, PackedSequencesMatchSeparateCalls) {
  const std::vector<int32_t> cu = {0, 5, 5, 100, 230};
  AttentionParams p;
  p.window = 40;
  const Problem packed(p, D{.H = 4, .KVH = 1, .Dh = 32}, true, cu);
  const Outputs all = packed.flash();
  const int64_t row = packed.d.H * packed.d.Dh;
  for (size_t s = 0; s + 1 < cu.size(); ++s) {
    const int64_t t0 = cu[s], n = cu[s + 1] - cu[s];
    if (n == 0) continue;
    Problem one(p, D{.B = 1, .Tq = n, .Tk = n, .H = 4, .KVH = 1, .Dh = 32}, true);
    one.q.assign(packed.q.begin() + t0 * row, packed.q.begin() + (t0 + n) * row);
    one.k.assign(packed.k.begin() + t0 * 32, packed.k.begin() + (t0 + n) * 32);
    one.v.assign(packed.v.begin() + t0 * 32, packed.v.begin() + (t0 + n) * 32);
    one.d_o.assign(packed.d_o.begin() + t0 * row, packed.d_o.begin() + (t0 + n) * row);
    one.sinks = packed.sinks;
    const Outputs r = one.flash();
    for (int64_t i = 0; i < n * row; ++i) {
      ASSERT_NEAR(r.o[i], all.o[t0 * row + i], 1e-6) << "seq " << s;
      ASSERT_NEAR(r.dq[i], all.dq[t0 * row + i], 1e-5) << "seq " << s;
    }
    for (int64_t i = 0; i < n * 32; ++i) ASSERT_NEAR(r.dk[i], all.dk[t0 * 32 + i], 1e-5) << "seq " << s;
  }
}

// Two identical calls give identical bits (the dQ sums over threads have a fixed order).
TEST(AttentionFlash, Deterministic) {
  AttentionParams p;
  const Problem pr(p, D{.B = 1, .Tq = 700, .Tk = 700, .H = 4, .KVH = 2, .Dh = 64}, true);
  const Outputs a = pr.flash(), b = pr.flash();
  EXPECT_TRUE(a.o == b.o && a.lse == b.lse && a.dq == b.dq && a.dk == b.dk && a.dv == b.dv && a.ds == b.ds);
}

// Peak bytes the forward + backward allocate (workspace and the saved lse): linear in T.
TEST(AttentionFlash, ExtraMemoryGrowsLinearly) {
  auto peak = [](int64_t T) {
    AttentionParams p;
    p.window = 256;  // keeps the test fast; the workspace does not depend on the window
    const Problem pr(p, D{.B = 1, .Tq = T, .Tk = T, .H = 2, .KVH = 1, .Dh = 16}, false);
    std::vector<float> o(pr.nq()), dq(pr.nq()), dk(pr.nk()), dv(pr.nk());
    const size_t before = tensor_live_bytes();
    reset_tensor_peak_bytes();
    {
      Tensor lse = Tensor::empty({1, 2, T});
      attention_flash_fwd(p, pr.d, pr.q.data(), pr.k.data(), pr.v.data(), o.data(), lse.f32());
      attention_flash_bwd(p, pr.d, pr.q.data(), pr.k.data(), pr.v.data(), o.data(), lse.f32(), pr.d_o.data(),
                          dq.data(), dk.data(), dv.data());
    }
    return static_cast<double>(tensor_peak_bytes() - before);
  };
  const double small = peak(4096), large = peak(16384);
  EXPECT_GT(large, 3.0 * small);
  EXPECT_LE(large, 4.5 * small) << small << " -> " << large << " bytes";
  // And far from a T x T score matrix: a few dozen floats per query row.
  EXPECT_LE(large, 64.0 * 16384 * 2 * 4 * 4);
}

}  // namespace
}  // namespace speedlm::ops
