// Decode attention over a paged KV cache: one query token per sequence (Tq = 1), GQA/MQA,
// keys and values read in place from fixed-size pages through a per-sequence page table.
//   q: [B, H, Dh]   o: [B, H, Dh]   lse: [B, H]
//   sequence b has lengths[b] >= 1 tokens; token t lives in page tables[b][t / P], slot t % P.
//   A page holds K and V of P tokens, each [KVH, P, Dh] in the storage dtype (f32, bf16 or int8
//   with one f32 scale per kv head and token, [KVH, P]); PageLayout gives the byte offsets.
// s_j = scale * q . k_j (then softcap * tanh(s_j / softcap) when softcap > 0),
// o = sum_j softmax_j(s) v_j: the last row of causal attention over all cached keys (attention op
// with Tq = 1). The fast form splits a long sequence's pages into
// pieces, runs them on separate threads and merges the partial results by their log-sum-exp
// (research/algorithms.md §9.4). README.md has the math and the int8 error bound.
#pragma once

#include <cstdint>
#include <string>

#include "speedlm/tensor.h"

namespace speedlm::ops {

enum class KvDType : uint8_t { F32, BF16, I8 };
const char* kv_dtype_name(KvDType t);
// "f32" | "bf16" | "int8"
Result<KvDType> parse_kv_dtype(const std::string& name);
size_t kv_dtype_bytes(KvDType t);

// Byte layout of one page: K block, V block, then (int8 only) the K and V scales; 64-byte aligned.
struct PageLayout {
  KvDType dtype = KvDType::F32;
  int64_t page_size = 0, KVH = 0, Dh = 0;
  size_t k_off = 0, v_off = 0, k_scale_off = 0, v_scale_off = 0, bytes = 0;
  static PageLayout make(KvDType dtype, int64_t page_size, int64_t kv_heads, int64_t head_dim);
  size_t row_elems() const { return static_cast<size_t>(KVH * Dh); }
};

// Stores one token's keys and values ([KVH, Dh] each) into slot `slot` of a page, converting
// to the page dtype (int8: per kv head scale = max|x| / 127, x_q = round(x / scale)).
void paged_kv_store(const PageLayout& l, uint8_t* page, int64_t slot, const float* k, const float* v);
// Reads back kv head h of slot `slot` as f32: k, v: [Dh] (the dequantised values the kernels see).
void paged_kv_load(const PageLayout& l, const uint8_t* page, int64_t slot, int64_t h, float* k, float* v);

// What the kernels read: the pages of a cache and the sequences' page tables.
struct PagedKv {
  PageLayout layout;
  const uint8_t* const* pages = nullptr;   // page id -> page base address
  const int32_t* const* tables = nullptr;  // [B] page tables, tables[b][i] = page id of tokens [iP, iP + P)
  const int64_t* lengths = nullptr;        // [B] cached tokens per sequence
};

struct PagedDecodeParams {
  float scale = 0.0f;  // 0 means 1/sqrt(Dh)
  // Pieces (runs of whole pages) per sequence in the fast form. 0: chosen so that B * KVH * pieces
  // work items keep every thread busy, pieces of at least kMinSplitTokens; > 0: exactly this many
  // (at most one per page). Any value gives the same result up to rounding.
  int64_t splits = 0;
  float softcap = 0.0f;  // 0: none; else s -> softcap * tanh(s / softcap), as the attention op
};

struct PagedDecodeDims {
  int64_t B = 1, H = 1, KVH = 1, Dh = 0;
};

Status paged_decode_check(const PagedDecodeParams& p, const PagedDecodeDims& d, const PagedKv& kv);

// Reference: plain loops, double accumulators, reading the dequantised cache values.
void paged_decode_ref_fwd(const PagedDecodeParams& p, const PagedDecodeDims& d, const PagedKv& kv, const double* q,
                          double* o, double* lse);
// Pieces the fast form splits a sequence of `length` tokens into when `threads` threads run it.
int64_t paged_decode_pieces(const PagedDecodeParams& p, const PagedDecodeDims& d, int64_t page_size, int64_t length,
                            int threads);
// Fast f32 form: GQA groups share each key read; split-KV over pages with an LSE merge.
void paged_decode_fwd(const PagedDecodeParams& p, const PagedDecodeDims& d, const PagedKv& kv, const float* q,
                      float* o, float* lse);

}  // namespace speedlm::ops
