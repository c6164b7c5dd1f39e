// BPE training. The text is reduced to its distinct pre-tokenizer chunks ("words") with
// their frequencies; pair counts are kept for the whole corpus and updated incrementally:
// a merge only rewrites the words that contain its pair (each pair lists the words it
// occurs in; entries may go stale and are re-checked). The best pair comes from a lazy
// max-heap: an entry whose count no longer matches is re-pushed with the current count.
#include <algorithm>
#include <queue>

#include "io/tokenizer/bpe_tokenizer.h"
#include "io/tokenizer/pretokenize.h"

namespace speedlm::io {

namespace {

struct Word {
  std::vector<int32_t> syms;
  int64_t freq = 0;
};

struct PairStat {
  int64_t count = 0;
  std::vector<int32_t> words;  // indices of words that contain (or once contained) the pair
};

using PairMap = std::unordered_map<uint64_t, PairStat>;

uint64_t key_of(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

// Max-heap order: higher count first; on equal counts the smaller (a, b) wins, which makes
// training deterministic.
struct HeapEntry {
  int64_t count;
  uint64_t key;
  bool operator<(const HeapEntry& o) const { return count != o.count ? count < o.count : key > o.key; }
};

// Replaces every (a, b) in word w by `id` (left to right), updating pair counts; the keys
// of the new pairs (those that contain `id`) are appended to `touched`.
void merge_word(std::vector<Word>& words, int32_t w, int32_t a, int32_t b, int32_t id, PairMap& pairs,
                std::vector<uint64_t>& touched) {
  std::vector<int32_t>& s = words[static_cast<size_t>(w)].syms;
  const int64_t freq = words[static_cast<size_t>(w)].freq;
  bool found = false;
  for (size_t k = 0; k + 1 < s.size() && !found; ++k) found = s[k] == a && s[k + 1] == b;
  if (!found) return;
  for (size_t k = 0; k + 1 < s.size(); ++k) pairs[key_of(s[k], s[k + 1])].count -= freq;
  size_t o = 0;
  for (size_t k = 0; k < s.size();) {
    if (k + 1 < s.size() && s[k] == a && s[k + 1] == b) {
      s[o++] = id;
      k += 2;
    } else {
      s[o++] = s[k++];
    }
  }
  s.resize(o);
  for (size_t k = 0; k + 1 < s.size(); ++k) {
    const uint64_t key = key_of(s[k], s[k + 1]);
    PairStat& st = pairs[key];
    st.count += freq;
    if (s[k] == id || s[k + 1] == id) {
      st.words.push_back(w);
      touched.push_back(key);
    }
  }
}

std::vector<BpeTokenizer::Merge> learn_merges(std::string_view text, int64_t max_merges) {
  std::unordered_map<std::string_view, int64_t> chunk_counts;
  for_each_chunk(text, [&](std::string_view chunk) {
    if (chunk.size() > 1) ++chunk_counts[chunk];
  });
  std::vector<Word> words;
  words.reserve(chunk_counts.size());
  for (const auto& [chunk, freq] : chunk_counts) {
    Word word;
    word.freq = freq;
    for (char c : chunk) word.syms.push_back(static_cast<uint8_t>(c));
    words.push_back(std::move(word));
  }

  PairMap pairs;
  for (int32_t w = 0; w < static_cast<int32_t>(words.size()); ++w) {
    const Word& word = words[static_cast<size_t>(w)];
    for (size_t k = 0; k + 1 < word.syms.size(); ++k) {
      PairStat& st = pairs[key_of(word.syms[k], word.syms[k + 1])];
      st.count += word.freq;
      st.words.push_back(w);
    }
  }
  std::priority_queue<HeapEntry> heap;
  for (const auto& [key, st] : pairs) heap.push({st.count, key});

  std::vector<BpeTokenizer::Merge> merges;
  std::vector<uint64_t> touched;
  while (static_cast<int64_t>(merges.size()) < max_merges && !heap.empty()) {
    const HeapEntry top = heap.top();
    heap.pop();
    auto it = pairs.find(top.key);
    const int64_t count = it == pairs.end() ? 0 : it->second.count;
    if (count != top.count) {
      // A lower count: re-queue it. A higher one: a newer entry is already queued.
      if (count > 0 && count < top.count) heap.push({count, top.key});
      continue;
    }
    const auto a = static_cast<int32_t>(top.key >> 32), b = static_cast<int32_t>(top.key & 0xffffffffu);
    const int32_t id = BpeTokenizer::kNumByteTokens + static_cast<int32_t>(merges.size());
    merges.emplace_back(a, b);
    std::vector<int32_t> ws = std::move(it->second.words);
    std::sort(ws.begin(), ws.end());
    ws.erase(std::unique(ws.begin(), ws.end()), ws.end());
    touched.clear();
    for (int32_t w : ws) merge_word(words, w, a, b, id, pairs, touched);
    pairs.erase(top.key);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (uint64_t key : touched) heap.push({pairs[key].count, key});
  }
  return merges;
}

}  // namespace

Result<BpeTokenizer> BpeTokenizer::train(std::string_view text, int32_t vocab_size,
                                         const std::vector<std::string>& special_tokens) {
  const int64_t min_vocab = kNumByteTokens + static_cast<int64_t>(special_tokens.size());
  if (vocab_size < min_vocab || vocab_size > kMaxVocabSize)
    return Status::errorf("bpe_train", "vocab_size = {}: must be in [{}, {}] (at least the 256 byte tokens and {} special tokens)",
                          vocab_size, min_vocab, kMaxVocabSize, special_tokens.size());
  std::vector<Merge> merges = learn_merges(text, vocab_size - min_vocab);
  std::vector<std::pair<std::string, int32_t>> specials;
  for (size_t i = 0; i < special_tokens.size(); ++i)
    specials.emplace_back(special_tokens[i], kNumByteTokens + static_cast<int32_t>(merges.size() + i));
  return build(std::move(merges), std::move(specials), "");
}

}  // namespace speedlm::io
