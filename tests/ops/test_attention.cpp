// Attention checks beyond the generated registry ones: shape validation, the bottom-right causal
// alignment, decode consistency, the saved lse, and the float instantiation of the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/rng.h"
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

int64_t q_numel(const D& d) { return d.B * d.Tq * d.H * d.Dh; }
int64_t kv_numel(const D& d) { return d.B * d.Tk * d.KVH * d.Dh; }

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

struct Fwd {
  std::vector<float> o, lse;
};

Fwd plain_fwd(const AttentionParams& p, const D& d, const std::vector<float>& q, const std::vector<float>& k,
              const std::vector<float>& v) {
  Fwd r{std::vector<float>(q_numel(d), std::numeric_limits<float>::quiet_NaN()),
        std::vector<float>(d.B * d.H * d.Tq, std::numeric_limits<float>::quiet_NaN())};
  attention_plain_fwd(p, d, q.data(), k.data(), v.data(), r.o.data(), r.lse.data());
  return r;
}

TEST(Attention, CheckRejectsBadShapes) {
  AttentionParams causal, full;
  full.causal = false;
  EXPECT_TRUE(attention_check(causal, D{.B = 2, .Tq = 5, .Tk = 70, .H = 8, .KVH = 2, .Dh = 64}).is_ok());
  EXPECT_TRUE(attention_check(full, D{.B = 1, .Tq = 70, .Tk = 5, .H = 4, .KVH = 4, .Dh = 17}).is_ok());
  auto message = [](const AttentionParams& p, const D& d) { return attention_check(p, d).message(); };
  EXPECT_EQ(message(causal, D{.B = 1, .Tq = 4, .Tk = 4, .H = 8, .KVH = 3, .Dh = 16}),
            "[attention] kv_heads = 3: heads (8) must be a multiple of it");
  EXPECT_EQ(message(causal, D{.B = 0, .Tq = 4, .Tk = 4, .H = 2, .KVH = 1, .Dh = 16}), "[attention] batch = 0: must be >= 1");
  EXPECT_EQ(message(causal, D{.B = 1, .Tq = 0, .Tk = 4, .H = 2, .KVH = 1, .Dh = 16}), "[attention] Tq = 0: must be >= 1");
  EXPECT_EQ(message(full, D{.B = 1, .Tq = 4, .Tk = -1, .H = 2, .KVH = 1, .Dh = 16}), "[attention] Tk = -1: must be >= 1");
  EXPECT_EQ(message(causal, D{.B = 1, .Tq = 4, .Tk = 4, .H = 0, .KVH = 1, .Dh = 16}), "[attention] heads = 0: must be >= 1");
  EXPECT_EQ(message(causal, D{.B = 1, .Tq = 4, .Tk = 4, .H = 2, .KVH = 0, .Dh = 16}),
            "[attention] kv_heads = 0: must be >= 1");
  EXPECT_EQ(message(causal, D{.B = 1, .Tq = 4, .Tk = 4, .H = 2, .KVH = 1, .Dh = 0}),
            "[attention] head_dim = 0: must be >= 1");
  EXPECT_EQ(message(causal, D{.B = 1, .Tq = 9, .Tk = 4, .H = 2, .KVH = 1, .Dh = 8}),
            "[attention] Tq = 9: causal attention needs Tq <= Tk (4), else a query sees no key");
  AttentionParams nan_scale;
  nan_scale.scale = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(message(nan_scale, D{.B = 1, .Tq = 4, .Tk = 4, .H = 2, .KVH = 1, .Dh = 8}),
            "[attention] scale = nan: must be finite");
  const D small{.B = 1, .Tq = 4, .Tk = 4, .H = 2, .KVH = 1, .Dh = 8};
  AttentionParams bad;
  bad.window = -1;
  EXPECT_EQ(message(bad, small), "[attention] window = -1: must be >= 0 (0 = no window)");
  bad.window = 0;
  bad.softcap = -2.0f;
  EXPECT_EQ(message(bad, small), "[attention] softcap = -2: must be finite and >= 0 (0 = none)");
  bad.softcap = std::numeric_limits<float>::infinity();
  EXPECT_EQ(message(bad, small), "[attention] softcap = inf: must be finite and >= 0 (0 = none)");
  // Packed sequences: offsets from 0, never decreasing, ending at Tq; batch 1 and Tk = Tq.
  auto packed = [&](std::vector<int32_t> cu, int64_t B = 1, int64_t Tk = 4) {
    D d = small;
    d.B = B;
    d.Tk = Tk;
    d.seqs = static_cast<int64_t>(cu.size()) - 1;
    d.cu_seqlens = cu.data();
    return message(causal, d);
  };
  EXPECT_EQ(packed({0, 1, 4}), "");
  EXPECT_EQ(packed({0, 3, 2, 4}), "[attention] cu_seqlens[2] = 2: offsets must not decrease (previous 3)");
  EXPECT_EQ(packed({1, 4}), "[attention] cu_seqlens[0] = 1: must be 0");
  EXPECT_EQ(packed({0, 5}), "[attention] cu_seqlens[1] = 5: must equal Tq (4)");
  EXPECT_EQ(packed({0, 4}, 2), "[attention] batch = 2: packed sequences need batch 1");
  EXPECT_EQ(packed({0, 4}, 1, 5), "[attention] Tk = 5: packed sequences need Tk = Tq (4)");
  EXPECT_EQ(packed({0}), "[attention] seqs = 0: must be >= 1 with cu_seqlens");
}

// Query i of a Tq-row block sees keys j <= i + Tk - Tq: with Tq = 2, Tk = 5, query 0 sees keys
// 0..3 and query 1 sees all five. Changing key/value 4 must leave query 0 untouched.
TEST(Attention, CausalMaskIsBottomRightAligned) {
  const D d{.B = 1, .Tq = 2, .Tk = 5, .H = 2, .KVH = 1, .Dh = 8};
  AttentionParams p;
  auto q = randn(q_numel(d), 1), k = randn(kv_numel(d), 2), v = randn(kv_numel(d), 3);
  Fwd a = plain_fwd(p, d, q, k, v);
  for (int64_t c = 0; c < d.Dh; ++c) {
    k[4 * d.Dh + c] += 1.0f;
    v[4 * d.Dh + c] -= 2.0f;
  }
  Fwd b = plain_fwd(p, d, q, k, v);
  std::vector<double> ref_o(q_numel(d)), ref_lse(d.H * d.Tq);
  std::vector<double> qd(q.begin(), q.end()), kd(k.begin(), k.end()), vd(v.begin(), v.end());
  attention_ref_fwd<double>(p, d, qd.data(), kd.data(), vd.data(), ref_o.data(), ref_lse.data());
  for (int64_t h = 0; h < d.H; ++h)
    for (int64_t c = 0; c < d.Dh; ++c) {
      const int64_t row0 = h * d.Dh + c, row1 = (d.H + h) * d.Dh + c;  // [T, H, Dh], query 0 and 1
      EXPECT_EQ(a.o[row0], b.o[row0]) << "query 0 must not see key 4";
      EXPECT_NE(a.o[row1], b.o[row1]) << "query 1 sees key 4";
      EXPECT_NEAR(b.o[row0], ref_o[row0], 1e-5);
      EXPECT_NEAR(b.o[row1], ref_o[row1], 1e-5);
    }
}

// Decoding: the last rows of causal attention over T tokens equal a Tq-row query block (the new
// tokens) against all T keys (cache + new), for Tq = 1 and a block longer than one row block.
TEST(Attention, DecodeMatchesLastRowsOfFullCausal) {
  const D full{.B = 2, .Tq = 150, .Tk = 150, .H = 4, .KVH = 2, .Dh = 16};
  AttentionParams p;
  auto q = randn(q_numel(full), 11), k = randn(kv_numel(full), 12), v = randn(kv_numel(full), 13);
  Fwd all = plain_fwd(p, full, q, k, v);
  for (int64_t tail : {1, 5, 70}) {
    SCOPED_TRACE(tail);
    D dec = full;
    dec.Tq = tail;
    std::vector<float> q_tail;
    for (int64_t b = 0; b < full.B; ++b) {
      auto first = q.begin() + (b * full.Tq + full.Tq - tail) * full.H * full.Dh;
      q_tail.insert(q_tail.end(), first, first + tail * full.H * full.Dh);
    }
    Fwd part = plain_fwd(p, dec, q_tail, k, v);
    for (int64_t b = 0; b < full.B; ++b)
      for (int64_t i = 0; i < tail; ++i)
        for (int64_t hc = 0; hc < full.H * full.Dh; ++hc)
          ASSERT_NEAR(part.o[(b * tail + i) * full.H * full.Dh + hc],
                      all.o[(b * full.Tq + full.Tq - tail + i) * full.H * full.Dh + hc], 2e-6);
    for (int64_t bh = 0; bh < full.B * full.H; ++bh)
      for (int64_t i = 0; i < tail; ++i)
        ASSERT_NEAR(part.lse[bh * tail + i], all.lse[bh * full.Tq + full.Tq - tail + i], 2e-5);
  }
}

// The probabilities of a row sum to 1: v = ones gives o = ones, whatever the scores (even +-100).
TEST(Attention, ConstantValuesGiveConstantOutput) {
  for (bool causal : {true, false}) {
    const D d{.B = 2, .Tq = 65, .Tk = 130, .H = 6, .KVH = 2, .Dh = 64};
    AttentionParams p;
    p.causal = causal;
    Fwd r = plain_fwd(p, d, randn(q_numel(d), 21, 4.0f), randn(kv_numel(d), 22, 4.0f),
                      std::vector<float>(kv_numel(d), 1.0f));
    EXPECT_LE(max_abs_diff(r.o, std::vector<float>(r.o.size(), 1.0f)), 1e-5) << "causal " << causal;
  }
}

// lse is an output of the forward that only the backward consumes: compare it to the reference.
TEST(Attention, LseMatchesReference) {
  for (double std : {1.0, 10.0}) {
    const D d{.B = 2, .Tq = 65, .Tk = 97, .H = 4, .KVH = 1, .Dh = 17};
    AttentionParams p;
    auto q = randn(q_numel(d), 31, static_cast<float>(std)), k = randn(kv_numel(d), 32, static_cast<float>(std));
    auto v = randn(kv_numel(d), 33);
    Fwd r = plain_fwd(p, d, q, k, v);
    std::vector<double> qd(q.begin(), q.end()), kd(k.begin(), k.end()), vd(v.begin(), v.end());
    std::vector<double> o(q_numel(d)), lse(d.B * d.H * d.Tq);
    attention_ref_fwd<double>(p, d, qd.data(), kd.data(), vd.data(), o.data(), lse.data());
    for (size_t i = 0; i < lse.size(); ++i) ASSERT_NEAR(r.lse[i], lse[i], 1e-6 * (1.0 + std::abs(lse[i]))) << i;
  }
}

// The float instantiation of the reference agrees with the double one.
TEST(Attention, FloatReferenceMatchesDouble) {
  const D d{.B = 1, .Tq = 33, .Tk = 40, .H = 4, .KVH = 2, .Dh = 9};
  AttentionParams p;
  auto q = randn(q_numel(d), 41), k = randn(kv_numel(d), 42), v = randn(kv_numel(d), 43), d_o = randn(q_numel(d), 44);
  std::vector<float> o(q_numel(d)), lse(d.H * d.Tq), dq(q_numel(d)), dk(kv_numel(d)), dv(kv_numel(d));
  attention_ref_fwd<float>(p, d, q.data(), k.data(), v.data(), o.data(), lse.data());
  attention_ref_bwd<float>(p, d, q.data(), k.data(), v.data(), d_o.data(), dq.data(), dk.data(), dv.data());
  auto dbl = [](const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); };
  auto qd = dbl(q), kd = dbl(k), vd = dbl(v), dod = dbl(d_o);
  std::vector<double> o2(o.size()), lse2(lse.size()), dq2(dq.size()), dk2(dk.size()), dv2(dv.size());
  attention_ref_fwd<double>(p, d, qd.data(), kd.data(), vd.data(), o2.data(), lse2.data());
  attention_ref_bwd<double>(p, d, qd.data(), kd.data(), vd.data(), dod.data(), dq2.data(), dk2.data(), dv2.data());
  auto close = [](const std::vector<float>& a, const std::vector<double>& b) {
    for (size_t i = 0; i < a.size(); ++i)
      if (std::abs(a[i] - b[i]) > 1e-6 * (1.0 + std::abs(b[i]))) return false;
    return true;
  };
  EXPECT_TRUE(close(o, o2));
  EXPECT_TRUE(close(lse, lse2));
  EXPECT_TRUE(close(dq, dq2));
  EXPECT_TRUE(close(dk, dk2));
  EXPECT_TRUE(close(dv, dv2));
}

}  // namespace
}  // namespace speedlm::ops

namespace speedlm::ops {
namespace {

double rms_rel(const std::vector<float>& a, const std::vector<double>& ref) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - ref[i]) * (a[i] - ref[i]), den += ref[i] * ref[i];
  return std::sqrt(num / den);
}

// The bf16 mode rounds every matmul operand (q, k, v, P, dO, dS) to bf16 (8 significant bits,
// relative rounding <= 2^-9) and accumulates in f32. Its documented error bound against the exact
// reference: RMS-relative <= 1e-2 for o and every gradient (the f32 mode stays below 1e-5); and
// like the f32 mode it is deterministic.
TEST(Attention, Bf16ModeStaysWithinItsErrorBoundAndIsDeterministic) {
  for (const D& d : {D{2, 70, 70, 4, 2, 64}, D{3, 256, 256, 6, 2, 64}, D{1, 5, 40, 2, 1, 16}}) {
    SCOPED_TRACE(::testing::Message() << "Tq=" << d.Tq << " Tk=" << d.Tk);
    auto q = randn(q_numel(d), 1), k = randn(kv_numel(d), 2), v = randn(kv_numel(d), 3), d_o = randn(q_numel(d), 4);
    auto as_double = [](const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); };
    std::vector<double> qd = as_double(q), kd = as_double(k), vd = as_double(v), dod = as_double(d_o);
    std::vector<double> o_ref(q.size()), lse_ref(d.B * d.H * d.Tq), dq_ref(q.size()), dk_ref(k.size()),
        dv_ref(v.size());
    AttentionParams p;
    attention_ref_fwd<double>(p, d, qd.data(), kd.data(), vd.data(), o_ref.data(), lse_ref.data());
    attention_ref_bwd<double>(p, d, qd.data(), kd.data(), vd.data(), dod.data(), dq_ref.data(), dk_ref.data(),
                              dv_ref.data());
    for (bool bf16 : {false, true}) {
      p.bf16 = bf16;
      std::vector<float> first;
      for (int run = 0; run < 2; ++run) {
        std::vector<float> o(q.size()), lse(lse_ref.size()), dq(q.size()), dk(k.size()), dv(v.size());
        attention_plain_fwd(p, d, q.data(), k.data(), v.data(), o.data(), lse.data());
        attention_plain_bwd(p, d, q.data(), k.data(), v.data(), o.data(), lse.data(), d_o.data(), dq.data(),
                            dk.data(), dv.data());
        double bound = bf16 ? 1e-2 : 1e-5;
        EXPECT_LE(rms_rel(o, o_ref), bound) << "bf16=" << bf16;
        EXPECT_LE(rms_rel(dq, dq_ref), bound) << "bf16=" << bf16;
        EXPECT_LE(rms_rel(dk, dk_ref), bound) << "bf16=" << bf16;
        EXPECT_LE(rms_rel(dv, dv_ref), bound) << "bf16=" << bf16;
        if (bf16) {
          EXPECT_GT(rms_rel(o, o_ref), 1e-5) << "the bf16 mode should actually round";
        }
        std::vector<float> all = o;
        for (auto* part : {&dq, &dk, &dv}) all.insert(all.end(), part->begin(), part->end());
        if (run == 0) first = all;
        else EXPECT_TRUE(all == first) << "bf16=" << bf16 << ": two identical calls differ";
      }
    }
  }
}

}  // namespace
}  // namespace speedlm::ops

namespace speedlm::ops {
namespace {

// The bf16 mode with every variant (window, softcap, sinks, packed sequences): the training
// path runs it when a model's attention has them. Same bound as above.
TEST(Attention, Bf16ModeWithWindowSoftcapSinksAndPackedSequences) {
  const std::vector<int32_t> cu = {0, 70, 71, 200};
  D d{.B = 1, .Tq = 200, .Tk = 200, .H = 4, .KVH = 2, .Dh = 32};
  d.seqs = 3;
  d.cu_seqlens = cu.data();
  AttentionParams p;
  p.window = 48;
  p.softcap = 3.0f;
  auto q = randn(q_numel(d), 5, 2.0f), k = randn(kv_numel(d), 6, 2.0f), v = randn(kv_numel(d), 7);
  auto d_o = randn(q_numel(d), 8), sinks = randn(d.H, 9);
  auto dbl = [](const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); };
  auto qd = dbl(q), kd = dbl(k), vd = dbl(v), dod = dbl(d_o), sd = dbl(sinks);
  std::vector<double> o_ref(q.size()), lse_ref(d.H * d.Tq), dq_ref(q.size()), dk_ref(k.size()), dv_ref(v.size()),
      ds_ref(d.H);
  attention_ref_fwd<double>(p, d, qd.data(), kd.data(), vd.data(), o_ref.data(), lse_ref.data(), sd.data());
  attention_ref_bwd<double>(p, d, qd.data(), kd.data(), vd.data(), dod.data(), dq_ref.data(), dk_ref.data(),
                            dv_ref.data(), sd.data(), ds_ref.data());
  p.bf16 = true;
  std::vector<float> o(q.size()), lse(lse_ref.size()), dq(q.size()), dk(k.size()), dv(v.size()), ds(d.H);
  attention_plain_fwd(p, d, q.data(), k.data(), v.data(), o.data(), lse.data(), sinks.data());
  attention_plain_bwd(p, d, q.data(), k.data(), v.data(), o.data(), lse.data(), d_o.data(), dq.data(), dk.data(),
                      dv.data(), sinks.data(), ds.data());
  EXPECT_LE(rms_rel(o, o_ref), 1e-2);
  EXPECT_LE(rms_rel(dq, dq_ref), 1e-2);
  EXPECT_LE(rms_rel(dk, dk_ref), 1e-2);
  EXPECT_LE(rms_rel(dv, dv_ref), 1e-2);
  EXPECT_LE(rms_rel(ds, ds_ref), 1e-2);
  EXPECT_GT(rms_rel(o, o_ref), 1e-5) << "the bf16 mode should actually round";
}

}  // namespace
}  // namespace speedlm::ops
