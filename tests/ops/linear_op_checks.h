// Checks 4 and 5 of DESIGN.md for the gated linear-attention ops (simple_gla, gla), shared by
// test_simple_gla.cpp and test_gla.cpp: chunk == step == reference; one call over T tokens ==
// two calls with the state carried, forward and backward (the initial-state gradient of the
// second call is the final-state cotangent of the first); strong decay stays finite.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"

namespace speedlm::ops::testing {

using Vec = std::vector<float>;

inline Vec randn(int64_t n, uint64_t seed, float std = 1.0f) {
  Rng rng(seed);
  Vec x(static_cast<size_t>(n));
  for (float& e : x) e = std * rng.normal();
  return x;
}

inline Vec uniform(int64_t n, uint64_t seed, float lo, float hi) {
  Rng rng(seed, 1);
  Vec x(static_cast<size_t>(n));
  for (float& e : x) e = lo + (hi - lo) * static_cast<float>(rng.uniform());
  return x;
}

inline double rms_rel(const Vec& a, const Vec& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - ref[i]) * (a[i] - ref[i]), den += ref[i] * ref[i];
  return std::sqrt(num) / (std::sqrt(den) + 1e-30);
}

inline bool all_finite(const Vec& a) {
  for (float x : a)
    if (!std::isfinite(x)) return false;
  return true;
}

// Rows [t0, t1) of a [B, T, row] tensor, and the inverse.
inline Vec slice_t(const Vec& x, int64_t B, int64_t T, int64_t row, int64_t t0, int64_t t1) {
  Vec out;
  for (int64_t b = 0; b < B; ++b) out.insert(out.end(), x.begin() + (b * T + t0) * row, x.begin() + (b * T + t1) * row);
  return out;
}

// One problem's inputs. gate_row = H (simple_gla) or H*K (gla).
struct LinearInputs {
  int64_t B, T, H, K, V, gate_row;
  Vec q, k, v, g, h0;
  static LinearInputs make(int64_t B, int64_t T, int64_t H, int64_t K, int64_t V, int64_t gate_row, float g_lo,
                           float g_hi, uint64_t seed) {
    return {B, T, H, K, V, gate_row, randn(B * T * H * K, seed), randn(B * T * H * K, seed + 1),
            randn(B * T * H * V, seed + 2), uniform(B * T * gate_row, seed + 3, g_lo, g_hi),
            randn(B * H * K * V, seed + 4)};
  }
  int64_t o_size() const { return B * T * H * V; }
  LinearInputs part(int64_t t0, int64_t t1, const Vec& state) const {
    return {B, t1 - t0, H, K, V, gate_row, slice_t(q, B, T, H * K, t0, t1), slice_t(k, B, T, H * K, t0, t1),
            slice_t(v, B, T, H * V, t0, t1), slice_t(g, B, T, gate_row, t0, t1), state};
  }
};

struct LinearOut {
  Vec o, ht;
};
struct LinearGrads {
  Vec dq, dk, dv, dg, dh0;
};

// Op: a traits struct with static fwd_chunk(in, chunk), fwd_step(in), fwd_ref(in) -> LinearOut and
// bwd_chunk(in, chunk, d_o, d_ht), bwd_ref(in, d_o, d_ht) -> LinearGrads.
template <typename Op>
void check_chunk_step_ref(float g_lo, float g_hi, int64_t T, uint64_t seed) {
  LinearInputs in = LinearInputs::make(2, T, 3, 16, 12, Op::gate_row(3, 16), g_lo, g_hi, seed);
  LinearOut ref = Op::fwd_ref(in), step = Op::fwd_step(in);
  EXPECT_LE(rms_rel(step.o, ref.o), 1e-5);
  EXPECT_LE(rms_rel(step.ht, ref.ht), 1e-5);
  for (int64_t chunk : {16, 32, 64}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    LinearOut c = Op::fwd_chunk(in, chunk);
    EXPECT_LE(rms_rel(c.o, ref.o), 1e-5);
    EXPECT_LE(rms_rel(c.ht, ref.ht), 1e-5);
    EXPECT_LE(rms_rel(c.o, step.o), 1e-5);
    EXPECT_LE(rms_rel(c.ht, step.ht), 1e-5);
  }
}

template <typename Op>
void check_split_continuity(int64_t T, int64_t T1, uint64_t seed) {
  LinearInputs in = LinearInputs::make(2, T, 2, 16, 8, Op::gate_row(2, 16), -0.5f, 0.0f, seed);
  const int64_t B = in.B, HV = in.H * in.V;
  LinearOut full = Op::fwd_chunk(in, 64);
  LinearInputs a = in.part(0, T1, in.h0);
  LinearOut first = Op::fwd_chunk(a, 64);
  LinearInputs b = in.part(T1, T, first.ht);
  LinearOut second = Op::fwd_chunk(b, 64);
  EXPECT_LE(rms_rel(first.o, slice_t(full.o, B, T, HV, 0, T1)), 1e-6);
  EXPECT_LE(rms_rel(second.o, slice_t(full.o, B, T, HV, T1, T)), 1e-5);
  EXPECT_LE(rms_rel(second.ht, full.ht), 1e-5);
  // The step form continues from the chunk form's state.
  LinearOut stepped = Op::fwd_step(b);
  EXPECT_LE(rms_rel(stepped.o, second.o), 1e-5);
  EXPECT_LE(rms_rel(stepped.ht, second.ht), 1e-5);

  // Backward: the second call's dh0 is the first call's d_ht.
  Vec d_o = randn(B * T * HV, seed + 10), d_ht = randn(B * in.H * in.K * in.V, seed + 11);
  LinearGrads gf = Op::bwd_chunk(in, 64, d_o, d_ht);
  LinearGrads g2 = Op::bwd_chunk(b, 64, slice_t(d_o, B, T, HV, T1, T), d_ht);
  LinearGrads g1 = Op::bwd_chunk(a, 64, slice_t(d_o, B, T, HV, 0, T1), g2.dh0);
  const int64_t HK = in.H * in.K;
  EXPECT_LE(rms_rel(g1.dq, slice_t(gf.dq, B, T, HK, 0, T1)), 1e-5);
  EXPECT_LE(rms_rel(g1.dk, slice_t(gf.dk, B, T, HK, 0, T1)), 1e-5);
  EXPECT_LE(rms_rel(g1.dv, slice_t(gf.dv, B, T, HV, 0, T1)), 1e-5);
  EXPECT_LE(rms_rel(g1.dg, slice_t(gf.dg, B, T, in.gate_row, 0, T1)), 1e-5);
  EXPECT_LE(rms_rel(g2.dq, slice_t(gf.dq, B, T, HK, T1, T)), 1e-5);
  EXPECT_LE(rms_rel(g2.dk, slice_t(gf.dk, B, T, HK, T1, T)), 1e-5);
  EXPECT_LE(rms_rel(g2.dg, slice_t(gf.dg, B, T, in.gate_row, T1, T)), 1e-5);
  EXPECT_LE(rms_rel(g1.dh0, gf.dh0), 1e-5);
  // And the chunk backward's dh0 equals the reference's.
  LinearGrads gr = Op::bwd_ref(in, d_o, d_ht);
  EXPECT_LE(rms_rel(gf.dh0, gr.dh0), 1e-5);
}

// g about -20 per token: every decay factor underflows within a chunk; nothing may overflow.
template <typename Op>
void check_strong_decay(uint64_t seed) {
  LinearInputs in = LinearInputs::make(1, 300, 2, 32, 16, Op::gate_row(2, 32), -20.5f, -19.5f, seed);
  for (float& x : in.q) x *= 10.0f;
  for (float& x : in.k) x *= 10.0f;
  LinearOut ref = Op::fwd_ref(in);
  Vec d_o = randn(300 * 2 * 16, seed + 5), d_ht = randn(2 * 32 * 16, seed + 6);
  LinearGrads gr = Op::bwd_ref(in, d_o, d_ht);
  for (int64_t chunk : {16, 64, 128}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    LinearOut c = Op::fwd_chunk(in, chunk);
    ASSERT_TRUE(all_finite(c.o) && all_finite(c.ht));
    EXPECT_LE(rms_rel(c.o, ref.o), 1e-5);
    EXPECT_LE(rms_rel(c.ht, ref.ht), 1e-5);
    LinearGrads g = Op::bwd_chunk(in, chunk, d_o, d_ht);
    for (const Vec* x : {&g.dq, &g.dk, &g.dv, &g.dg, &g.dh0}) ASSERT_TRUE(all_finite(*x));
    EXPECT_LE(rms_rel(g.dq, gr.dq), 1e-4);
    EXPECT_LE(rms_rel(g.dk, gr.dk), 1e-4);
    EXPECT_LE(rms_rel(g.dv, gr.dv), 1e-4);
    EXPECT_LE(rms_rel(g.dg, gr.dg), 1e-4);
    EXPECT_LE(rms_rel(g.dh0, gr.dh0), 1e-4);
  }
}

}  // namespace speedlm::ops::testing
