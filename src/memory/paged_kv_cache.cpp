#include "memory/paged_kv_cache.h"

#include <algorithm>
#include <cstring>

namespace speedlm {

int32_t PagePool::alloc() {
  if (free_.empty()) {
    // 64-byte aligned pages: the layout's blocks are multiples of 64 bytes.
    const size_t bytes = layout_.bytes * kChunkPages + 64;
    chunks_.push_back(std::make_unique<uint8_t[]>(bytes));
    auto addr = reinterpret_cast<uintptr_t>(chunks_.back().get());
    uint8_t* first = chunks_.back().get() + (64 - addr % 64) % 64;
    for (int64_t i = kChunkPages - 1; i >= 0; --i) free_.push_back(static_cast<int32_t>(base_.size() + i));
    for (int64_t i = 0; i < kChunkPages; ++i) base_.push_back(first + i * layout_.bytes);
    refs_.resize(base_.size(), 0);
  }
  const int32_t id = free_.back();
  free_.pop_back();
  refs_[id] = 1;
  return id;
}

void PagePool::release(int32_t id) {
  SPEEDLM_ASSERT(refs_[id] > 0, "page {} released more often than retained", id);
  if (--refs_[id] == 0) free_.push_back(id);
}

PagedKvCache::PagedKvCache(const PagedKvOptions& opt, int64_t batch)
    : pool_(std::make_shared<PagePool>(
          ops::PageLayout::make(opt.dtype, opt.page_size, opt.kv_heads, opt.head_dim))) {
  SPEEDLM_ASSERT(opt.page_size >= 1 && opt.kv_heads >= 1 && opt.head_dim >= 1, "paged KV cache of shape {}x{}x{}",
                 opt.page_size, opt.kv_heads, opt.head_dim);
  for (int64_t b = 0; b < batch; ++b) add_sequence();
}

PagedKvCache::~PagedKvCache() { release_all(); }

void PagedKvCache::release_all() {
  for (Seq& s : seqs_)
    for (int32_t id : s.pages) pool_->release(id);
}

void PagedKvCache::retain_all() {
  for (Seq& s : seqs_)
    for (int32_t id : s.pages) pool_->retain(id);
}

int64_t PagedKvCache::length() const {
  int64_t n = 0;
  for (const Seq& s : seqs_) n = std::max(n, s.length);
  return n;
}

size_t PagedKvCache::bytes() const {
  std::vector<bool> seen(pool_->capacity(), false);
  size_t pages = 0;
  for (const Seq& s : seqs_)
    for (int32_t id : s.pages)
      if (!seen[id]) seen[id] = true, ++pages;
  return pages * layout().bytes;
}

std::unique_ptr<MixerState> PagedKvCache::snapshot() const {
  std::unique_ptr<PagedKvCache> s(new PagedKvCache(pool_));
  s->seqs_ = seqs_;
  s->retain_all();
  return s;
}

void PagedKvCache::restore(const MixerState& snap) {
  const auto& s = dynamic_cast<const PagedKvCache&>(snap);
  SPEEDLM_ASSERT(s.pool_ == pool_, "restoring a paged KV cache from another cache's snapshot");
  release_all();
  seqs_ = s.seqs_;
  retain_all();
}

int64_t PagedKvCache::add_sequence() {
  seqs_.push_back(Seq{{}, 0, true});
  return static_cast<int64_t>(seqs_.size()) - 1;
}

int64_t PagedKvCache::fork(int64_t seq) {
  SPEEDLM_ASSERT(live(seq), "fork of sequence {}: not live", seq);
  Seq copy = seqs_[seq];
  for (int32_t id : copy.pages) pool_->retain(id);
  seqs_.push_back(std::move(copy));
  return static_cast<int64_t>(seqs_.size()) - 1;
}

void PagedKvCache::free(int64_t seq) {
  SPEEDLM_ASSERT(live(seq), "free of sequence {}: not live", seq);
  for (int32_t id : seqs_[seq].pages) pool_->release(id);
  seqs_[seq] = Seq{};
}

bool PagedKvCache::live(int64_t seq) const {
  return seq >= 0 && seq < static_cast<int64_t>(seqs_.size()) && seqs_[seq].live;
}

void PagedKvCache::append(int64_t seq, const float* k, const float* v, int64_t T) {
  SPEEDLM_ASSERT(live(seq), "append to sequence {}: not live", seq);
  const ops::PageLayout& L = layout();
  const size_t row = L.row_elems();
  Seq& s = seqs_[seq];
  for (int64_t t = 0; t < T; ++t, ++s.length) {
    const int64_t slot = s.length % L.page_size;
    if (slot == 0) {
      s.pages.push_back(pool_->alloc());
    } else if (pool_->refcount(s.pages.back()) > 1) {
      // Copy on write: the partially filled last page is shared with a fork or a snapshot.
      const int32_t own = pool_->alloc();
      std::memcpy(pool_->page(own), pool_->page(s.pages.back()), L.bytes);
      pool_->release(s.pages.back());
      s.pages.back() = own;
    }
    ops::paged_kv_store(L, pool_->page(s.pages.back()), slot, k + t * row, v + t * row);
  }
}

void PagedKvCache::append_batch(const float* k, const float* v, int64_t B, int64_t T) {
  const size_t row = layout().row_elems();
  for (int64_t b = 0; b < B; ++b) append(b, k + b * T * row, v + b * T * row, T);
}

std::unique_ptr<PagedKvCache::View> PagedKvCache::view(const std::vector<int64_t>& seqs) const {
  auto v = std::make_unique<View>();
  for (int64_t s : seqs) {
    SPEEDLM_ASSERT(live(s), "view of sequence {}: not live", s);
    v->tables.push_back(seqs_[s].pages.data());
    v->lengths.push_back(seqs_[s].length);
  }
  v->kv.layout = layout();
  v->kv.pages = pool_->pages();
  v->kv.tables = v->tables.data();
  v->kv.lengths = v->lengths.data();
  return v;
}

}  // namespace speedlm
