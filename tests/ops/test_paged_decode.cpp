// paged_decode: reference vs the attention op's reference (Tq = 1), the fast form vs both and vs
// the plain attention form, split-KV (any number of pieces gives the same result), poisoned
// memory, extreme scores, and the bf16 / int8 error bounds derived from the storage rounding
// (README.md, "Quantised storage").
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/rng.h"
#include "memory/paged_kv_cache.h"
#include "ops/attention/attention/attention.h"
#include "ops/attention/paged_decode/paged_decode.h"

namespace speedlm::ops {
namespace {

struct Case {
  int64_t B, H, KVH, Dh, page_size;
  std::vector<int64_t> lengths;
  double qk_std = 1.0;
};

// Inputs of one case: q [B, H, Dh] and dense k, v per sequence [len, KVH, Dh], plus a paged cache
// holding them. Sequence b is forked from a shared prefix where possible so that page tables are
// scattered and pages shared.
struct Fixture {
  Case c;
  std::vector<float> q;
  std::vector<std::vector<float>> k, v;
  std::unique_ptr<PagedKvCache> cache;
  std::vector<int64_t> seqs;

  Fixture(const Case& cs, KvDType dtype, uint64_t seed) : c(cs) {
    Rng rng(seed);
    auto normal = [&](size_t n, double sd) {
      std::vector<float> x(n);
      for (float& e : x) e = static_cast<float>(sd * rng.normal());
      return x;
    };
    const size_t row = c.KVH * c.Dh;
    q = normal(c.B * c.H * c.Dh, c.qk_std);
    cache = std::make_unique<PagedKvCache>(PagedKvOptions{c.KVH, c.Dh, c.page_size, dtype}, 0);
    // Sequences share a common prefix of min(lengths) / 2 tokens through fork.
    const int64_t prefix = *std::min_element(c.lengths.begin(), c.lengths.end()) / 2;
    std::vector<float> kp = normal(prefix * row, c.qk_std), vp = normal(prefix * row, 1.0);
    const int64_t root = cache->add_sequence();
    cache->append(root, kp.data(), vp.data(), prefix);
    for (int64_t b = 0; b < c.B; ++b) {
      const int64_t rest = c.lengths[b] - prefix;
      std::vector<float> kr = normal(rest * row, c.qk_std), vr = normal(rest * row, 1.0);
      seqs.push_back(cache->fork(root));
      cache->append(seqs.back(), kr.data(), vr.data(), rest);
      k.push_back(kp), v.push_back(vp);
      k.back().insert(k.back().end(), kr.begin(), kr.end());
      v.back().insert(v.back().end(), vr.begin(), vr.end());
    }
    cache->free(root);
  }
  PagedDecodeDims dims() const { return {c.B, c.H, c.KVH, c.Dh}; }
  AttentionDims attention_dims(int64_t b) const { return {1, 1, c.lengths[b], c.H, c.KVH, c.Dh}; }
};

std::vector<Case> cases() {
  return {
      {1, 2, 1, 8, 16, {1}},
      {2, 4, 2, 16, 16, {37, 100}},
      {3, 6, 2, 17, 7, {5, 64, 65}},
      {2, 4, 4, 8, 1, {9, 12}},
      {1, 8, 1, 64, 16, {700}},
  };
}

double rms_rel(const std::vector<double>& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - ref[i]) * (a[i] - ref[i]), den += ref[i] * ref[i];
  return std::sqrt(num) / (std::sqrt(den) + 1e-300);
}

// The attention op's reference on the dense (f32) copies: o [B, H, Dh], lse [B, H].
void attention_reference(const Fixture& f, std::vector<double>& o, std::vector<double>& lse, float softcap = 0.0f) {
  const Case& c = f.c;
  o.assign(c.B * c.H * c.Dh, 0.0), lse.assign(c.B * c.H, 0.0);
  for (int64_t b = 0; b < c.B; ++b) {
    std::vector<double> qd(f.q.begin() + b * c.H * c.Dh, f.q.begin() + (b + 1) * c.H * c.Dh);
    std::vector<double> kd(f.k[b].begin(), f.k[b].end()), vd(f.v[b].begin(), f.v[b].end());
    AttentionParams ap;
    ap.softcap = softcap;
    attention_ref_fwd<double>(ap, f.attention_dims(b), qd.data(), kd.data(), vd.data(),
                              o.data() + b * c.H * c.Dh, lse.data() + b * c.H);
  }
}

struct Out {
  std::vector<double> o, lse;
};

Out run_fast(const Fixture& f, int64_t splits, float softcap = 0.0f) {
  auto view = f.cache->view(f.seqs);
  Tensor o = Tensor::empty({f.c.B, f.c.H, f.c.Dh}), lse = Tensor::empty({f.c.B, f.c.H});
  PagedDecodeParams p;
  p.splits = splits, p.softcap = softcap;
  paged_decode_fwd(p, f.dims(), view->kv, f.q.data(), o.f32(), lse.f32());
  return {std::vector<double>(o.f32(), o.f32() + o.numel()), std::vector<double>(lse.f32(), lse.f32() + lse.numel())};
}

Out run_ref(const Fixture& f, float softcap = 0.0f) {
  auto view = f.cache->view(f.seqs);
  Out r{std::vector<double>(f.c.B * f.c.H * f.c.Dh), std::vector<double>(f.c.B * f.c.H)};
  std::vector<double> qd(f.q.begin(), f.q.end());
  PagedDecodeParams p;
  p.softcap = softcap;
  paged_decode_ref_fwd(p, f.dims(), view->kv, qd.data(), r.o.data(), r.lse.data());
  return r;
}

TEST(PagedDecode, RefEqualsAttentionRefWithOneQuery) {
  uint64_t seed = 1;
  for (const Case& c : cases()) {
    Fixture f(c, KvDType::F32, seed++);
    std::vector<double> o, lse;
    attention_reference(f, o, lse);
    Out r = run_ref(f);
    EXPECT_LE(rms_rel(r.o, o), 1e-12) << "Dh " << c.Dh;
    EXPECT_LE(rms_rel(r.lse, lse), 1e-12);
  }
}

TEST(PagedDecode, FastEqualsReferenceForAnySplit) {
  uint64_t seed = 10;
  for (Case c : cases()) {
    for (double sd : {1.0, 10.0}) {  // 10: scores of about +-100 (check 7)
      c.qk_std = sd;
      Fixture f(c, KvDType::F32, seed++);
      std::vector<double> o, lse;
      attention_reference(f, o, lse);
      for (int64_t splits : {0, 1, 2, 3, 1000}) {
        SCOPED_TRACE(testing::Message() << "Dh " << c.Dh << " sd " << sd << " splits " << splits);
        Out r = run_fast(f, splits);
        EXPECT_LE(rms_rel(r.o, o), 1e-5);
        EXPECT_LE(rms_rel(r.lse, lse), 1e-6);
      }
    }
  }
}

// Softcap (Gemma 2): scores of about +-100 squashed into +-5 change every weight; reference and
// fast form both follow the attention op's definition.
TEST(PagedDecode, SoftcapFollowsTheAttentionOp) {
  uint64_t seed = 50;
  for (Case c : cases()) {
    c.qk_std = 10.0;
    Fixture f(c, KvDType::F32, seed++);
    std::vector<double> o, lse, o_uncapped, lse_uncapped;
    attention_reference(f, o, lse, 5.0f);
    attention_reference(f, o_uncapped, lse_uncapped);
    if (c.lengths[0] > 1) {
      EXPECT_GT(rms_rel(o_uncapped, o), 1e-2) << "the cap must matter here";
    }
    Out r = run_ref(f, 5.0f);
    EXPECT_LE(rms_rel(r.o, o), 1e-12) << "Dh " << c.Dh;
    EXPECT_LE(rms_rel(r.lse, lse), 1e-12);
    for (int64_t splits : {0, 3}) {
      Out fast = run_fast(f, splits, 5.0f);
      EXPECT_LE(rms_rel(fast.o, o), 1e-5) << "Dh " << c.Dh << " splits " << splits;
      EXPECT_LE(rms_rel(fast.lse, lse), 1e-6);
    }
  }
}

TEST(PagedDecode, FastEqualsPlainAttentionForm) {
  Fixture f(Case{2, 4, 2, 16, 16, {300, 41}}, KvDType::F32, 20);
  Out r = run_fast(f, 0);
  for (int64_t b = 0; b < f.c.B; ++b) {
    std::vector<float> o(f.c.H * f.c.Dh), lse(f.c.H);
    attention_plain_fwd(AttentionParams{}, f.attention_dims(b), f.q.data() + b * f.c.H * f.c.Dh, f.k[b].data(),
                        f.v[b].data(), o.data(), lse.data());
    std::vector<double> od(o.begin(), o.end()), mine(r.o.begin() + b * o.size(), r.o.begin() + (b + 1) * o.size());
    EXPECT_LE(rms_rel(mine, od), 1e-5) << "b " << b;
  }
}

TEST(PagedDecode, LongContextSplitsMatchReference) {
  Fixture f(Case{1, 4, 1, 32, 16, {5000}}, KvDType::F32, 30);
  std::vector<double> o, lse;
  attention_reference(f, o, lse);
  for (int64_t splits : {0, 2, 7}) EXPECT_LE(rms_rel(run_fast(f, splits).o, o), 1e-5) << splits;
}

TEST(PagedDecode, OneLongSequenceIsSplitAcrossThreads) {
  const PagedDecodeParams p;
  // B = 1 with one kv head: two threads get a piece each once the sequence is long enough.
  EXPECT_EQ(paged_decode_pieces(p, {1, 8, 1, 64}, 16, 4096, 2), 2);
  EXPECT_EQ(paged_decode_pieces(p, {1, 8, 1, 64}, 16, 300, 2), 1) << "pieces shorter than 256 tokens do not pay";
  // Enough (b, kv head) items already: no split.
  EXPECT_EQ(paged_decode_pieces(p, {1, 8, 2, 64}, 16, 4096, 2), 1);
  EXPECT_EQ(paged_decode_pieces(p, {1, 8, 2, 64}, 16, 4096, 8), 4);
  PagedDecodeParams forced;
  forced.splits = 3;
  EXPECT_EQ(paged_decode_pieces(forced, {1, 8, 2, 64}, 16, 40, 1), 3);
  EXPECT_EQ(paged_decode_pieces(forced, {1, 8, 2, 64}, 16, 20, 1), 2) << "at most one piece per page";
}

TEST(PagedDecode, PoisonedMemoryLeavesNoNaN) {
  for (KvDType t : {KvDType::F32, KvDType::BF16, KvDType::I8}) {
    set_poison_allocations(true);
    Fixture f(Case{2, 4, 2, 16, 16, {37, 100}}, t, 40);
    Out r = run_fast(f, 3);
    set_poison_allocations(false);
    for (double x : r.o) ASSERT_TRUE(std::isfinite(x)) << kv_dtype_name(t);
    for (double x : r.lse) ASSERT_TRUE(std::isfinite(x)) << kv_dtype_name(t);
  }
}

// |k~ - k| elementwise bound of the storage rounding: int8 scale / 2 (scale = max|k_row| / 127),
// bf16 |k| 2^-8 (round to nearest with an 8-bit significand). README.md derives the output bound
//   |o~ - o| <= (exp(2 eps) - 1) max_j |v_j| + max_j |dv_j|,   eps = scale * max_j sum_c |q_c| |dk_jc|
// per output element, from the scores' error eps and the values' error dv.
double storage_error(KvDType t, const float* x, int64_t Dh, int64_t c) {
  if (t == KvDType::BF16) return std::fabs(x[c]) * std::ldexp(1.0, -8);
  float mx = 0.0f;
  for (int64_t i = 0; i < Dh; ++i) mx = std::max(mx, std::fabs(x[i]));
  return mx / 127.0 / 2.0;
}

void check_bound(KvDType t) {
  Case c{2, 4, 2, 32, 16, {200, 333}};
  Fixture f(c, t, 50);
  std::vector<double> o, lse;
  attention_reference(f, o, lse);  // exact attention on the unrounded inputs
  Out r = run_fast(f, 0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.Dh));
  const int64_t G = c.H / c.KVH;
  double worst_ratio = 0.0;
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t kvh = h / G;
      const float* qh = f.q.data() + (b * c.H + h) * c.Dh;
      double eps = 0.0;
      std::vector<double> vmax(c.Dh, 0.0), dvmax(c.Dh, 0.0);
      for (int64_t j = 0; j < c.lengths[b]; ++j) {
        const float* kj = f.k[b].data() + (j * c.KVH + kvh) * c.Dh;
        const float* vj = f.v[b].data() + (j * c.KVH + kvh) * c.Dh;
        double e = 0.0;
        for (int64_t d = 0; d < c.Dh; ++d) {
          e += std::fabs(qh[d]) * storage_error(t, kj, c.Dh, d);
          vmax[d] = std::max(vmax[d], static_cast<double>(std::fabs(vj[d])));
          dvmax[d] = std::max(dvmax[d], storage_error(t, vj, c.Dh, d));
        }
        eps = std::max(eps, scale * e);
      }
      for (int64_t d = 0; d < c.Dh; ++d) {
        // The f32 arithmetic adds at most a few ulps of the largest value: far below the storage term.
        const double bound = std::expm1(2.0 * eps) * vmax[d] + dvmax[d] + 1e-6 * vmax[d];
        const double err = std::fabs(r.o[(b * c.H + h) * c.Dh + d] - o[(b * c.H + h) * c.Dh + d]);
        EXPECT_LE(err, bound) << "b " << b << " h " << h << " d " << d;
        worst_ratio = std::max(worst_ratio, err / bound);
      }
    }
  // The rounding is visible (the test compares against the unrounded inputs) and the bound is not vacuous.
  EXPECT_GT(worst_ratio, 1e-3) << kv_dtype_name(t);
}

TEST(PagedDecode, Bf16ErrorWithinStorageBound) { check_bound(KvDType::BF16); }
TEST(PagedDecode, Int8ErrorWithinScaleBound) { check_bound(KvDType::I8); }

TEST(PagedDecode, CheckRejectsBadArguments) {
  Fixture f(Case{1, 4, 2, 8, 16, {3}}, KvDType::F32, 60);
  auto view = f.cache->view(f.seqs);
  PagedDecodeParams p;
  EXPECT_TRUE(paged_decode_check(p, {1, 4, 2, 8}, view->kv).is_ok());
  EXPECT_EQ(paged_decode_check(p, {1, 3, 2, 8}, view->kv).message(),
            "[paged_decode] kv_heads = 2: heads (3) must be a multiple of it");
  EXPECT_NE(paged_decode_check(p, {1, 4, 2, 16}, view->kv).message().find("page layout"), std::string::npos);
  EXPECT_EQ(paged_decode_check(p, {0, 4, 2, 8}, view->kv).message(), "[paged_decode] batch = 0: must be >= 1");
  PagedDecodeParams capped;
  capped.softcap = -1.0f;
  EXPECT_EQ(paged_decode_check(capped, {1, 4, 2, 8}, view->kv).message(),
            "[paged_decode] softcap = -1: must be finite and >= 0 (0 = none)");
  view->lengths[0] = 0;
  EXPECT_EQ(paged_decode_check(p, {1, 4, 2, 8}, view->kv).message(),
            "[paged_decode] lengths[0] = 0: a decode step needs at least one cached token");
  EXPECT_FALSE(parse_kv_dtype("fp8").is_ok());
  EXPECT_EQ(parse_kv_dtype("int8").value(), KvDType::I8);
}

}  // namespace
}  // namespace speedlm::ops
