#include "io/tokenizer/bpe_tokenizer.h"

#include <algorithm>
#include <functional>
#include <queue>

#include "io/tokenizer/pretokenize.h"

namespace speedlm::io {

namespace {
constexpr const char* kWhere = "tokenizer";
}  // namespace

BpeTokenizer::BpeTokenizer() {
  tokens_.reserve(kNumByteTokens);
  for (int c = 0; c < kNumByteTokens; ++c) tokens_.emplace_back(1, static_cast<char>(c));
}

Result<BpeTokenizer> BpeTokenizer::build(std::vector<Merge> merges,
                                         std::vector<std::pair<std::string, int32_t>> specials,
                                         std::string_view source) {
  const std::string at = source.empty() ? std::string() : fmt::format("{}: ", source);
  const int64_t total = int64_t{kNumByteTokens} + static_cast<int64_t>(merges.size() + specials.size());
  if (total > kMaxVocabSize)
    return Status::errorf(kWhere, "{}{} merges + {} special tokens: vocabulary of {} exceeds the limit {}", at,
                          merges.size(), specials.size(), total, kMaxVocabSize);
  BpeTokenizer t;
  t.tokens_.reserve(static_cast<size_t>(total));
  t.merge_ids_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const int32_t id = kNumByteTokens + static_cast<int32_t>(i);
    const auto [a, b] = merges[i];
    for (int side = 0; side < 2; ++side) {
      const int32_t v = side == 0 ? a : b;
      if (v < 0 || v >= id)
        return Status::errorf(kWhere, "{}merges[{}][{}] = {}: must be in [0, {}) (a byte or an earlier merge)", at,
                              i, side, v, id);
    }
    auto [it, inserted] = t.merge_ids_.emplace(pair_key(a, b), id);
    if (!inserted)
      return Status::errorf(kWhere, "{}merges[{}] = [{}, {}]: repeats merges[{}]", at, i, a, b,
                            it->second - kNumByteTokens);
    std::string bytes = t.tokens_[static_cast<size_t>(a)] + t.tokens_[static_cast<size_t>(b)];
    t.tokens_.push_back(std::move(bytes));
  }
  t.merges_ = std::move(merges);
  std::sort(specials.begin(), specials.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
  for (auto& [name, id] : specials) {
    const int32_t expected = t.vocab_size();
    if (id != expected)
      return Status::errorf(kWhere,
                            "{}special_tokens[\"{}\"] = {}: special token ids must be {}..{} (right after the "
                            "merges), each used once",
                            at, name, id, kNumByteTokens + t.num_merges(), total - 1);
    if (name.empty()) return Status::errorf(kWhere, "{}special token {}: name must not be empty", at, id);
    if (t.special_token_id(name))
      return Status::errorf(kWhere, "{}special token \"{}\": defined twice", at, name);
    t.specials_.emplace_back(name, id);
    t.tokens_.push_back(std::move(name));
  }
  return t;
}

Result<int32_t> BpeTokenizer::add_special_token(std::string name) {
  if (name.empty()) return Status::error(kWhere, "special token name \"\": must not be empty");
  if (special_token_id(name)) return Status::errorf(kWhere, "special token \"{}\": already defined", name);
  if (vocab_size() >= kMaxVocabSize)
    return Status::errorf(kWhere, "special token \"{}\": vocabulary is at the limit {}", name, kMaxVocabSize);
  const int32_t id = vocab_size();
  specials_.emplace_back(name, id);
  tokens_.push_back(std::move(name));
  return id;
}

std::optional<int32_t> BpeTokenizer::special_token_id(std::string_view name) const {
  for (const auto& [n, id] : specials_)
    if (n == name) return id;
  return std::nullopt;
}

int32_t BpeTokenizer::merged_id(int32_t a, int32_t b) const {
  auto it = merge_ids_.find(pair_key(a, b));
  return it == merge_ids_.end() ? -1 : it->second;
}

// Applies the merges to one chunk in rank order (merge ids grow with rank). A min-heap of
// (merged id, position) over a linked list of symbols makes this O(n log n) in the chunk
// length; equal ranks go left to right, which is exactly how training applied each merge.
void BpeTokenizer::encode_chunk(std::string_view chunk, std::vector<int32_t>& out) const {
  const int64_t n = static_cast<int64_t>(chunk.size());
  std::vector<int32_t> sym(static_cast<size_t>(n));
  std::vector<int64_t> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    sym[i] = static_cast<uint8_t>(chunk[i]);
    prev[i] = i - 1;
    next[i] = i + 1;
  }
  using Entry = std::pair<int32_t, int64_t>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
  for (int64_t i = 0; i + 1 < n; ++i)
    if (int32_t m = merged_id(sym[i], sym[i + 1]); m >= 0) heap.emplace(m, i);
  while (!heap.empty()) {
    const auto [id, i] = heap.top();
    heap.pop();
    // Entries go stale when a neighbour merged first; the pair at i must still make `id`.
    if (sym[i] < 0 || next[i] >= n || merged_id(sym[i], sym[next[i]]) != id) continue;
    const int64_t j = next[i];
    sym[i] = id;
    sym[j] = -1;
    next[i] = next[j];
    if (next[i] < n) prev[next[i]] = i;
    if (prev[i] >= 0)
      if (int32_t m = merged_id(sym[prev[i]], id); m >= 0) heap.emplace(m, prev[i]);
    if (next[i] < n)
      if (int32_t m = merged_id(id, sym[next[i]]); m >= 0) heap.emplace(m, i);
  }
  for (int64_t i = 0; i < n; i = next[i]) out.push_back(sym[i]);
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view bytes) const {
  std::vector<int32_t> out;
  out.reserve(bytes.size() / 3 + 16);
  if (merges_.empty()) {
    for (char c : bytes) out.push_back(static_cast<uint8_t>(c));
    return out;
  }
  // Text repeats the same words, so each distinct chunk is merged once per call and its
  // ids (a range of cache_ids) are copied for every later occurrence.
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> cache;
  std::vector<int32_t> cache_ids;
  for_each_chunk(bytes, [&](std::string_view chunk) {
    if (chunk.size() == 1) {
      out.push_back(static_cast<uint8_t>(chunk[0]));
      return;
    }
    auto [it, inserted] = cache.try_emplace(chunk);
    if (inserted) {
      const size_t begin = cache_ids.size();
      encode_chunk(chunk, cache_ids);
      it->second = {begin, cache_ids.size()};
    }
    out.insert(out.end(), cache_ids.begin() + static_cast<std::ptrdiff_t>(it->second.first),
               cache_ids.begin() + static_cast<std::ptrdiff_t>(it->second.second));
  });
  return out;
}

Result<std::string> BpeTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (size_t k = 0; k < ids.size(); ++k) {
    const int32_t id = ids[k];
    if (id < 0 || id >= vocab_size())
      return Status::errorf(kWhere, "decode: ids[{}] = {}: must be in [0, {})", k, id, vocab_size());
    out += tokens_[static_cast<size_t>(id)];
  }
  return out;
}

}  // namespace speedlm::io
