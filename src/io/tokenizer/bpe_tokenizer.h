// Byte-level BPE tokenizer that speedlm trains itself.
//
// Ids: 0..255 are the raw bytes; 256..256+M-1 are the M merges in the order they were
// learned (merge i joins two earlier tokens into id 256 + i); the named special tokens
// (e.g. "<|endoftext|>") take the ids after that. encode() never produces a special token
// (text that spells one is encoded as plain bytes), so decode(encode(s)) == s for every
// byte string s: invalid UTF-8, NUL bytes and the empty string included.
//
// Text is first split into chunks by the pre-tokenizer (pretokenize.h); merges never cross
// chunk boundaries.
//
// File format (tokenizer.json, UTF-8 JSON; version 1):
//   {"type": "byte_bpe", "version": 1, "vocab_size": V,
//    "special_tokens": {"<|endoftext|>": V - 1, ...},
//    "merges": [[a, b], ...]}
//   - vocab_size = 256 + len(merges) + len(special_tokens)
//   - merges[i] = [a, b] makes token 256 + i; a and b are ids < 256 + i; no pair repeats
//   - special_tokens maps distinct non-empty names to the ids 256 + len(merges) .. V - 1
//   - no other keys
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "speedlm/status.h"

namespace speedlm::io {

class BpeTokenizer {
 public:
  static constexpr int32_t kNumByteTokens = 256;
  static constexpr int32_t kMaxVocabSize = 1 << 24;
  using Merge = std::pair<int32_t, int32_t>;

  // A tokenizer with the 256 byte tokens only.
  BpeTokenizer();

  // Learns merges on `text` until the vocabulary (bytes + merges + special tokens) has
  // vocab_size entries, or until no adjacent pair is left to merge (the vocabulary is then
  // smaller). Each step merges the most frequent pair; ties go to the smallest (a, b).
  // Deterministic: the same text and arguments give the same merges.
  static Result<BpeTokenizer> train(std::string_view text, int32_t vocab_size,
                                    const std::vector<std::string>& special_tokens = {});

  // Builds a tokenizer from merges and special tokens (name, id), validated as in the file
  // format.
  static Result<BpeTokenizer> from_merges(std::vector<Merge> merges,
                                          std::vector<std::pair<std::string, int32_t>> special_tokens) {
    return build(std::move(merges), std::move(special_tokens), "");
  }

  // Appends a special token; returns its id.
  Result<int32_t> add_special_token(std::string name);

  // encode and decode keep no state between calls: safe from several threads at once.
  std::vector<int32_t> encode(std::string_view bytes) const;
  // Fails on an id outside [0, vocab_size) (naming its position and value).
  Result<std::string> decode(std::span<const int32_t> ids) const;

  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t num_merges() const { return static_cast<int32_t>(merges_.size()); }
  const std::vector<Merge>& merges() const { return merges_; }
  // (name, id) in id order.
  const std::vector<std::pair<std::string, int32_t>>& special_tokens() const { return specials_; }
  std::optional<int32_t> special_token_id(std::string_view name) const;
  // The bytes a token decodes to (a special token decodes to its name). id must be valid.
  std::string_view token_bytes(int32_t id) const { return tokens_[static_cast<size_t>(id)]; }

  // The tokenizer.json text, and its parser; `source` (e.g. the path) prefixes error messages.
  std::string to_json() const;
  static Result<BpeTokenizer> from_json(std::string_view json_text, std::string_view source);
  Status save(const std::string& path) const;
  static Result<BpeTokenizer> load(const std::string& path);

 private:
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  // Validates and builds; `source` (a path, or empty) goes into error messages.
  static Result<BpeTokenizer> build(std::vector<Merge> merges, std::vector<std::pair<std::string, int32_t>> specials,
                                    std::string_view source);
  int32_t merged_id(int32_t a, int32_t b) const;
  void encode_chunk(std::string_view chunk, std::vector<int32_t>& out) const;

  std::vector<Merge> merges_;
  std::vector<std::pair<std::string, int32_t>> specials_;
  std::vector<std::string> tokens_;                 // bytes of every id
  std::unordered_map<uint64_t, int32_t> merge_ids_;  // pair_key(a, b) -> merged id
};

}  // namespace speedlm::io
