// A paged KV cache for one attention layer: fixed-size pages from a block pool with reference
// counts, one page table per sequence. Sequences can be forked: the fork shares every page of
// its parent, and a write into a shared (partially filled) last page copies it first (copy on
// write), so writes after a fork never change the other sequence. Pages store f32, bf16 or
// int8 (per token and kv head scales); layout and conversions are the paged_decode op's.
// Snapshots share pages the same way, so a snapshot costs page tables, not data.
//   k, v of one token: [KVH, Dh]; a page holds page_size tokens.
#pragma once

#include <memory>
#include <vector>

#include "memory/mixer_state.h"
#include "ops/attention/paged_decode/paged_decode.h"

namespace speedlm {

// Fixed-size pages with reference counts; freed pages are kept for reuse.
class PagePool {
 public:
  explicit PagePool(const ops::PageLayout& layout) : layout_(layout) {}
  const ops::PageLayout& layout() const { return layout_; }
  int32_t alloc();  // a page with refcount 1
  void retain(int32_t id) { ++refs_[id]; }
  void release(int32_t id);
  int32_t refcount(int32_t id) const { return refs_[id]; }
  uint8_t* page(int32_t id) { return base_[id]; }
  const uint8_t* const* pages() const { return base_.data(); }
  int64_t capacity() const { return static_cast<int64_t>(base_.size()); }
  int64_t in_use() const { return capacity() - static_cast<int64_t>(free_.size()); }

 private:
  // Pages are allocated in chunks that never move, so page addresses stay valid.
  static constexpr int64_t kChunkPages = 64;
  ops::PageLayout layout_;
  std::vector<std::unique_ptr<uint8_t[]>> chunks_;
  std::vector<uint8_t*> base_;
  std::vector<int32_t> refs_, free_;
};

struct PagedKvOptions {
  int64_t kv_heads = 1, head_dim = 0;
  int64_t page_size = 16;
  ops::KvDType dtype = ops::KvDType::F32;
};

class PagedKvCache final : public MixerState {
 public:
  // `batch` empty sequences with ids 0 .. batch - 1.
  PagedKvCache(const PagedKvOptions& opt, int64_t batch);
  ~PagedKvCache() override;
  PagedKvCache(const PagedKvCache&) = delete;
  PagedKvCache& operator=(const PagedKvCache&) = delete;

  MemoryKind kind() const override { return MemoryKind::GrowingKv; }
  // The longest live sequence.
  int64_t length() const override;
  // Pages referenced by this cache's sequences, each counted once however many share it. The pool
  // keeps freed pages for reuse: its allocation is pool().capacity() pages.
  size_t bytes() const override;
  size_t bytes_per_token() const override { return layout().bytes / layout().page_size; }
  std::unique_ptr<MixerState> snapshot() const override;
  void restore(const MixerState& snap) override;

  const ops::PageLayout& layout() const { return pool_->layout(); }
  const PagePool& pool() const { return *pool_; }
  int64_t add_sequence();
  // A new sequence with the same tokens as `seq`, sharing its pages.
  int64_t fork(int64_t seq);
  // Releases the sequence's pages; its id becomes invalid.
  void free(int64_t seq);
  bool live(int64_t seq) const;
  int64_t seq_length(int64_t seq) const { return seqs_[seq].length; }
  const std::vector<int32_t>& page_table(int64_t seq) const { return seqs_[seq].pages; }
  // Appends T tokens to one sequence: k, v: [T, KVH, Dh].
  void append(int64_t seq, const float* k, const float* v, int64_t T);
  // Appends T tokens to each of sequences 0 .. B - 1: k, v: [B, T, KVH, Dh].
  void append_batch(const float* k, const float* v, int64_t B, int64_t T);

  // The kernels' view of sequences `seqs` (in that order); valid until the next append/fork/free.
  struct View {
    ops::PagedKv kv;
    std::vector<const int32_t*> tables;
    std::vector<int64_t> lengths;
  };
  std::unique_ptr<View> view(const std::vector<int64_t>& seqs) const;

 private:
  struct Seq {
    std::vector<int32_t> pages;
    int64_t length = 0;
    bool live = false;
  };
  explicit PagedKvCache(std::shared_ptr<PagePool> pool) : pool_(std::move(pool)) {}
  void release_all();
  void retain_all();
  std::shared_ptr<PagePool> pool_;
  std::vector<Seq> seqs_;
};

}  // namespace speedlm
