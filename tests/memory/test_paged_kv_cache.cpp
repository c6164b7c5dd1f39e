// PagedKvCache: append/fork/free, copy on write (writes after a fork never change the other
// sequence), byte accounting (shared pages counted once), snapshot/restore, storage dtypes.
#include <gtest/gtest.h>

#include <vector>

#include "core/rng.h"
#include "memory/paged_kv_cache.h"

namespace speedlm {
namespace {

constexpr int64_t KVH = 2, Dh = 8, P = 16, kRow = KVH * Dh;

std::vector<float> tokens(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(n * kRow);
  for (float& e : x) e = static_cast<float>(rng.normal());
  return x;
}

// The sequence's cached keys and values read back as f32: [len, KVH, Dh] each.
void read_back(const PagedKvCache& c, int64_t seq, std::vector<float>& k, std::vector<float>& v) {
  const ops::PageLayout& l = c.layout();
  k.assign(c.seq_length(seq) * kRow, 0.0f), v = k;
  for (int64_t t = 0; t < c.seq_length(seq); ++t)
    for (int64_t h = 0; h < KVH; ++h)
      ops::paged_kv_load(l, c.pool().pages()[c.page_table(seq)[t / P]], t % P, h, &k[(t * KVH + h) * Dh],
                         &v[(t * KVH + h) * Dh]);
}

PagedKvOptions options(ops::KvDType t = ops::KvDType::F32) { return {KVH, Dh, P, t}; }

TEST(PagedKvCache, AppendAcrossPagesReadsBackExactly) {
  PagedKvCache c(options(), 1);
  std::vector<float> k = tokens(40, 1), v = tokens(40, 2);
  c.append(0, k.data(), v.data(), 7);
  c.append(0, k.data() + 7 * kRow, v.data() + 7 * kRow, 33);
  EXPECT_EQ(c.seq_length(0), 40);
  EXPECT_EQ(c.page_table(0).size(), 3u);
  EXPECT_EQ(c.bytes(), 3 * c.layout().bytes);
  std::vector<float> k2, v2;
  read_back(c, 0, k2, v2);
  EXPECT_EQ(k2, k);
  EXPECT_EQ(v2, v);
}

TEST(PagedKvCache, WritesAfterForkNeverChangeTheOtherSequence) {
  PagedKvCache c(options(), 1);
  std::vector<float> k = tokens(20, 3), v = tokens(20, 4);
  c.append(0, k.data(), v.data(), 20);  // one full page, one page holding 4 tokens
  const size_t page = c.layout().bytes;
  const int64_t f = c.fork(0);
  EXPECT_EQ(c.bytes(), 2 * page) << "shared pages are counted once";
  EXPECT_EQ(c.pool().refcount(c.page_table(0)[1]), 2);

  // The fork writes into the shared partial page: it gets its own copy, the parent is unchanged.
  std::vector<float> kf = tokens(3, 5), vf = tokens(3, 6);
  c.append(f, kf.data(), vf.data(), 3);
  EXPECT_EQ(c.page_table(f)[0], c.page_table(0)[0]);
  EXPECT_NE(c.page_table(f)[1], c.page_table(0)[1]);
  EXPECT_EQ(c.bytes(), 3 * page);
  std::vector<float> k0, v0, k1, v1;
  read_back(c, 0, k0, v0);
  EXPECT_EQ(k0, k);
  EXPECT_EQ(v0, v);

  // The parent writes after the fork: its page is no longer shared, written in place.
  std::vector<float> kp = tokens(14, 7), vp = tokens(14, 8);
  const int32_t before = c.page_table(0)[1];
  c.append(0, kp.data(), vp.data(), 14);  // fills page 1 (12 slots) and starts page 2
  EXPECT_EQ(c.page_table(0)[1], before);
  read_back(c, f, k1, v1);
  std::vector<float> kexp(k), vexp(v);
  kexp.insert(kexp.end(), kf.begin(), kf.end()), vexp.insert(vexp.end(), vf.begin(), vf.end());
  EXPECT_EQ(k1, kexp);
  EXPECT_EQ(v1, vexp);
  EXPECT_EQ(c.bytes(), 4 * page);

  // Freeing the parent keeps the fork readable and returns the parent's own pages.
  c.free(0);
  EXPECT_FALSE(c.live(0));
  EXPECT_EQ(c.bytes(), 2 * page);
  EXPECT_EQ(c.pool().in_use(), 2);
  read_back(c, f, k1, v1);
  EXPECT_EQ(k1, kexp);
}

TEST(PagedKvCache, ForkAtAPageBoundaryCopiesNothing) {
  PagedKvCache c(options(), 1);
  std::vector<float> k = tokens(P, 9);
  c.append(0, k.data(), k.data(), P);
  const int64_t f = c.fork(0);
  c.append(f, k.data(), k.data(), 1);
  c.append(0, k.data(), k.data(), 1);
  EXPECT_EQ(c.page_table(f)[0], c.page_table(0)[0]);
  EXPECT_EQ(c.pool().in_use(), 3);
  EXPECT_EQ(c.bytes(), 3 * c.layout().bytes);
}

TEST(PagedKvCache, SnapshotRestoreSharesPagesAndRollsBack) {
  PagedKvCache c(options(), 2);
  std::vector<float> k = tokens(2 * 10, 10);
  c.append_batch(k.data(), k.data(), 2, 10);
  auto snap = c.snapshot();
  EXPECT_EQ(c.pool().in_use(), 2) << "a snapshot shares pages";
  std::vector<float> before_k, before_v, after_k, after_v;
  read_back(c, 1, before_k, before_v);
  std::vector<float> more = tokens(2 * 9, 11);
  c.append_batch(more.data(), more.data(), 2, 9);
  EXPECT_EQ(c.length(), 19);
  c.restore(*snap);
  EXPECT_EQ(c.length(), 10);
  read_back(c, 1, after_k, after_v);
  EXPECT_EQ(after_k, before_k);
  snap.reset();
  EXPECT_EQ(c.pool().in_use(), 2) << "pages copied on write are released with the snapshot";
}

TEST(PagedKvCache, BytesPerTokenFollowsTheDtype) {
  for (auto t : {ops::KvDType::F32, ops::KvDType::BF16, ops::KvDType::I8}) {
    PagedKvCache c(options(t), 1);
    // Page blocks are 64-byte aligned; with P * KVH * Dh = 256 every block is a multiple of 64.
    const size_t expected = 2 * KVH * Dh * ops::kv_dtype_bytes(t) + (t == ops::KvDType::I8 ? 2 * KVH * 4 : 0);
    EXPECT_EQ(c.bytes_per_token(), expected) << ops::kv_dtype_name(t);
    EXPECT_EQ(c.bytes(), 0u);
  }
}

TEST(PagedKvCache, Int8RoundTripWithinHalfAScale) {
  PagedKvCache c(options(ops::KvDType::I8), 1);
  std::vector<float> k = tokens(5, 12);
  c.append(0, k.data(), k.data(), 5);
  std::vector<float> k2, v2;
  read_back(c, 0, k2, v2);
  for (int64_t r = 0; r < 5 * KVH; ++r) {
    float mx = 0.0f;
    for (int64_t d = 0; d < Dh; ++d) mx = std::max(mx, std::fabs(k[r * Dh + d]));
    for (int64_t d = 0; d < Dh; ++d) EXPECT_LE(std::fabs(k2[r * Dh + d] - k[r * Dh + d]), mx / 127.0f * 0.5f * (1 + 1e-6f));
  }
}

}  // namespace
}  // namespace speedlm
