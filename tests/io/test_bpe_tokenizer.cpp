// Byte-level BPE: pre-tokenizer chunks, training against a naive reference, exact
// round-trips of arbitrary bytes, tokenizer.json save/load and its error messages.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/tokenizer/bpe_tokenizer.h"
#include "io/tokenizer/pretokenize.h"
#include "testing/generated_text.h"

namespace speedlm::io {
namespace {

using Merge = BpeTokenizer::Merge;
using speedlm::test_util::english_text;
using speedlm::test_util::TempDir;

std::vector<std::string> chunks_of(std::string_view text) {
  std::vector<std::string> out;
  for_each_chunk(text, [&](std::string_view c) { out.emplace_back(c); });
  return out;
}

std::string random_bytes(Rng& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng.below(256));
  return s;
}

// The spec of training, written plainly: recount every pair each step, take the most
// frequent (smallest pair on ties), merge it left to right in every word.
std::vector<Merge> naive_train(std::string_view text, int64_t num_merges) {
  std::map<std::string, int64_t> counts;
  for_each_chunk(text, [&](std::string_view c) { ++counts[std::string(c)]; });
  std::vector<std::pair<std::vector<int32_t>, int64_t>> words;
  for (const auto& [chunk, freq] : counts) words.push_back({std::vector<int32_t>(chunk.begin(), chunk.end()), freq});
  for (auto& [syms, freq] : words)
    for (int32_t& s : syms) s &= 0xff;
  std::vector<Merge> merges;
  while (static_cast<int64_t>(merges.size()) < num_merges) {
    std::map<Merge, int64_t> pairs;
    for (const auto& [syms, freq] : words)
      for (size_t k = 0; k + 1 < syms.size(); ++k) pairs[{syms[k], syms[k + 1]}] += freq;
    if (pairs.empty()) break;
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it)
      if (it->second > best->second) best = it;
    const int32_t id = 256 + static_cast<int32_t>(merges.size());
    merges.push_back(best->first);
    for (auto& [syms, freq] : words) {
      std::vector<int32_t> out;
      for (size_t k = 0; k < syms.size();) {
        if (k + 1 < syms.size() && Merge{syms[k], syms[k + 1]} == best->first) {
          out.push_back(id);
          k += 2;
        } else {
          out.push_back(syms[k++]);
        }
      }
      syms = out;
    }
  }
  return merges;
}

// The spec of encoding: every merge in order, left to right, within each chunk.
std::vector<int32_t> naive_encode(const BpeTokenizer& tok, std::string_view text) {
  std::vector<int32_t> out;
  for_each_chunk(text, [&](std::string_view chunk) {
    std::vector<int32_t> syms;
    for (char c : chunk) syms.push_back(static_cast<uint8_t>(c));
    for (size_t i = 0; i < tok.merges().size(); ++i) {
      std::vector<int32_t> next;
      for (size_t k = 0; k < syms.size();) {
        if (k + 1 < syms.size() && Merge{syms[k], syms[k + 1]} == tok.merges()[i]) {
          next.push_back(256 + static_cast<int32_t>(i));
          k += 2;
        } else {
          next.push_back(syms[k++]);
        }
      }
      syms = next;
    }
    out.insert(out.end(), syms.begin(), syms.end());
  });
  return out;
}

BpeTokenizer trained(int32_t vocab, const std::vector<std::string>& specials = {}) {
  Result<BpeTokenizer> tok = BpeTokenizer::train(english_text(400, 1), vocab, specials);
  EXPECT_TRUE(tok.is_ok()) << tok.status().message();
  return std::move(tok).value();
}

TEST(Pretokenize, SplitsLikeGpt2) {
  EXPECT_EQ(chunks_of("Hello world"), (std::vector<std::string>{"Hello", " world"}));
  EXPECT_EQ(chunks_of("a   b"), (std::vector<std::string>{"a", "  ", " b"}));
  EXPECT_EQ(chunks_of("end.\n\nThe"), (std::vector<std::string>{"end", ".", "\n\n", "The"}));
  EXPECT_EQ(chunks_of("x \n y"), (std::vector<std::string>{"x", " \n", " y"}));
  EXPECT_EQ(chunks_of(" 1234567 ab"), (std::vector<std::string>{" 123", "456", "7", " ab"}));
  EXPECT_EQ(chunks_of("say, \"Yes!\" "), (std::vector<std::string>{"say", ",", " \"", "Yes", "!\"", " "}));
  EXPECT_EQ(chunks_of("caf\xc3\xa9 na\xc3\xafve"), (std::vector<std::string>{"caf\xc3\xa9", " na\xc3\xafve"}));
  EXPECT_EQ(chunks_of(std::string("a\0\0b", 4)), (std::vector<std::string>{"a", std::string("\0\0", 2), "b"}));
  EXPECT_TRUE(chunks_of("").empty());
}

TEST(Pretokenize, ChunksTileRandomBytes) {
  Rng rng(3);
  for (int iter = 0; iter < 200; ++iter) {
    const std::string s = random_bytes(rng, rng.below(300));
    std::string joined;
    for_each_chunk(s, [&](std::string_view c) {
      EXPECT_FALSE(c.empty());
      joined += c;
    });
    EXPECT_EQ(joined, s);
  }
}

TEST(BpeTokenizer, TrainingMatchesNaiveReference) {
  const std::string text = english_text(150, 2);
  Result<BpeTokenizer> tok = BpeTokenizer::train(text, 256 + 120);
  ASSERT_TRUE(tok.is_ok()) << tok.status().message();
  EXPECT_EQ(tok->merges(), naive_train(text, 120));
  EXPECT_EQ(tok->encode(text), naive_encode(*tok, text));
  const std::string other = english_text(30, 9) + "aaaaaaa abababab the thethe";
  EXPECT_EQ(tok->encode(other), naive_encode(*tok, other));
}

TEST(BpeTokenizer, TrainingIsDeterministic) {
  const std::string text = english_text(300, 4);
  Result<BpeTokenizer> a = BpeTokenizer::train(text, 600);
  Result<BpeTokenizer> b = BpeTokenizer::train(std::string(text), 600);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  EXPECT_EQ(a->merges(), b->merges());
  EXPECT_EQ(a->to_json(), b->to_json());
}

TEST(BpeTokenizer, MergesShortenEnglish) {
  const std::string text = english_text(400, 5);
  const BpeTokenizer tok = trained(512);
  EXPECT_EQ(tok.vocab_size(), 512);
  const std::vector<int32_t> ids = tok.encode(text);
  EXPECT_LT(ids.size() * 3, text.size()) << "expected over 3 bytes per token on in-domain text";
  EXPECT_EQ(tok.decode(ids).value(), text);
}

TEST(BpeTokenizer, RoundTripsAnyBytes) {
  const BpeTokenizer tok = trained(700);
  const BpeTokenizer bytes_only;
  Rng rng(7);
  std::vector<std::string> cases = {"", std::string(1, '\0'), std::string("\0\0\0a\0", 5), "\xff\xfe\x80",
                                    "\xc3(", "\xe2\x82", " ", "\n\n\n", "   ", "the the  the\t\r\n"};
  for (int iter = 0; iter < 300; ++iter) cases.push_back(random_bytes(rng, rng.below(200)));
  // Random mixes of English and invalid UTF-8, so merges actually fire next to odd bytes.
  for (int iter = 0; iter < 100; ++iter)
    cases.push_back(english_text(2, 100 + iter) + random_bytes(rng, 5) + english_text(1, 200 + iter));
  for (const std::string& s : cases) {
    for (const BpeTokenizer* t : {&tok, &bytes_only}) {
      const std::vector<int32_t> ids = t->encode(s);
      Result<std::string> back = t->decode(ids);
      ASSERT_TRUE(back.is_ok()) << back.status().message();
      EXPECT_EQ(*back, s);
    }
  }
  EXPECT_TRUE(tok.encode("").empty());
}

TEST(BpeTokenizer, LongChunkEncodesFast) {
  const BpeTokenizer tok = trained(700);
  const std::string s(200000, 'a');
  const std::vector<int32_t> ids = tok.encode(s);
  EXPECT_EQ(tok.decode(ids).value(), s);
}

TEST(BpeTokenizer, StopsWhenPairsRunOut) {
  Result<BpeTokenizer> tok = BpeTokenizer::train("abab", 1000);
  ASSERT_TRUE(tok.is_ok());
  EXPECT_EQ(tok->merges(), (std::vector<Merge>{{'a', 'b'}, {256, 256}}));
  EXPECT_EQ(tok->vocab_size(), 258);
  EXPECT_EQ(tok->encode("abab"), std::vector<int32_t>{257});
}

TEST(BpeTokenizer, SpecialTokensAreNeverProduced) {
  const BpeTokenizer tok = trained(600, {"<|endoftext|>"});
  EXPECT_EQ(tok.vocab_size(), 600);
  EXPECT_EQ(tok.num_merges(), 600 - 256 - 1);
  ASSERT_EQ(tok.special_token_id("<|endoftext|>"), 599);
  const std::string text = "the end<|endoftext|>";
  const std::vector<int32_t> ids = tok.encode(text);
  for (int32_t id : ids) EXPECT_LT(id, 599);
  EXPECT_EQ(tok.decode(ids).value(), text);
  EXPECT_EQ(tok.decode(std::vector<int32_t>{599}).value(), "<|endoftext|>");

  BpeTokenizer more = tok;
  Result<int32_t> pad = more.add_special_token("<|pad|>");
  ASSERT_TRUE(pad.is_ok());
  EXPECT_EQ(*pad, 600);
  Result<int32_t> again = more.add_special_token("<|pad|>");
  ASSERT_FALSE(again.is_ok());
  EXPECT_NE(again.status().message().find("<|pad|>"), std::string::npos);
}

TEST(BpeTokenizer, RejectsBadArguments) {
  Result<BpeTokenizer> small = BpeTokenizer::train("abc", 100);
  ASSERT_FALSE(small.is_ok());
  EXPECT_NE(small.status().message().find("vocab_size = 100"), std::string::npos) << small.status().message();
  Result<BpeTokenizer> no_room = BpeTokenizer::train("abc", 256, {"<|endoftext|>"});
  ASSERT_FALSE(no_room.is_ok());
  Result<std::string> bad = BpeTokenizer().decode(std::vector<int32_t>{65, 256});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("ids[1] = 256"), std::string::npos) << bad.status().message();
  Result<BpeTokenizer> fwd = BpeTokenizer::from_merges({{97, 98}, {256, 258}}, {});
  ASSERT_FALSE(fwd.is_ok());
  EXPECT_NE(fwd.status().message().find("merges[1][1] = 258"), std::string::npos) << fwd.status().message();
}

TEST(BpeTokenizer, SaveLoadKeepsEncodings) {
  TempDir dir;
  const BpeTokenizer tok = trained(800, {"<|endoftext|>"});
  ASSERT_TRUE(tok.save(dir.file("tokenizer.json")).is_ok());
  Result<BpeTokenizer> back = BpeTokenizer::load(dir.file("tokenizer.json"));
  ASSERT_TRUE(back.is_ok()) << back.status().message();
  EXPECT_EQ(back->merges(), tok.merges());
  EXPECT_EQ(back->special_tokens(), tok.special_tokens());
  const std::string text = english_text(200, 11);
  EXPECT_EQ(back->encode(text), tok.encode(text));
  EXPECT_EQ(back->to_json(), tok.to_json());
}

TEST(BpeTokenizer, MissingFileNamesThePath) {
  const std::string path = "/nonexistent/speedlm/tokenizer.json";
  Result<BpeTokenizer> r = BpeTokenizer::load(path);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("[io] cannot read"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
}

TEST(BpeTokenizer, CorruptJsonNamesTheProblem) {
  TempDir dir;
  const std::string head = R"({"type": "byte_bpe", "version": 1, )";
  const std::pair<std::string, std::string> cases[] = {
      {head + R"("vocab_size": 258, "merges": [[97, 98], [256)", "invalid JSON"},
      {R"([1, 2])", "top level"},
      {R"({"type": "wordpiece", "version": 1, "vocab_size": 256, "merges": []})", "type = \"wordpiece\""},
      {R"({"type": "byte_bpe", "version": 2, "vocab_size": 256, "merges": []})", "version = 2"},
      {head + R"("vocab_size": 300, "merges": [[97, 98]]})", "vocab_size = 300"},
      {head + R"("vocab_size": "258", "merges": []})", "vocab_size = \"258\""},
      {head + R"("vocab_size": 258, "merges": [[97, 98], [256, 999]]})", "merges[1][1] = 999"},
      {head + R"("vocab_size": 258, "merges": [[97, 98], [97, 98]]})", "merges[1] = [97, 98]: repeats merges[0]"},
      {head + R"("vocab_size": 257, "merges": [[97, "b"]]})", "merges[0] = [97,\"b\"]"},
      {head + R"("vocab_size": 256})", "missing key \"merges\""},
      {head + R"("vocab_size": 256, "merges": [], "extra": 1})", "unknown key \"extra\""},
      {head + R"("vocab_size": 258, "merges": [[97, 98]], "special_tokens": {"<|eot|>": 300}})",
       "special_tokens[\"<|eot|>\"] = 300"},
  };
  for (const auto& [text, expected] : cases) {
    const std::string path = dir.file("bad.json");
    std::ofstream(path) << text;
    Result<BpeTokenizer> r = BpeTokenizer::load(path);
    ASSERT_FALSE(r.is_ok()) << text;
    EXPECT_EQ(r.status().message().rfind("[tokenizer] " + path + ": ", 0), 0u) << r.status().message();
    EXPECT_NE(r.status().message().find(expected), std::string::npos)
        << "expected \"" << expected << "\" in: " << r.status().message();
  }
}

}  // namespace
}  // namespace speedlm::io
