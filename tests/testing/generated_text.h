// Small generated inputs shared by the data-layer tests (no external corpus needed).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <iterator>
#include <string>

#include "core/rng.h"

namespace speedlm::test_util {

// English-like text: sentences of common words with capitals, commas, numbers and line breaks.
inline std::string english_text(int64_t sentences, uint64_t seed) {
  static const char* kWords[] = {"the",   "and",   "of",     "to",    "that",    "in",    "he",    "shall",
                                 "unto",  "for",   "his",    "they",  "said",    "be",    "is",    "with",
                                 "all",   "not",   "him",    "them",  "people",  "house", "land",  "king",
                                 "came",  "which", "before", "there", "hundred", "water", "light", "evening"};
  Rng rng(seed);
  std::string text;
  for (int64_t s = 0; s < sentences; ++s) {
    const int64_t len = 4 + static_cast<int64_t>(rng.below(12));
    for (int64_t w = 0; w < len; ++w) {
      std::string word = kWords[rng.below(std::size(kWords))];
      if (w == 0) word[0] = static_cast<char>(word[0] - 'a' + 'A');
      text += word;
      if (rng.below(10) == 0) text += ",";
      if (rng.below(25) == 0) text.append(" ").append(std::to_string(rng.below(100000)));
      text += w + 1 < len ? " " : (rng.below(3) == 0 ? ".\n" : ". ");
    }
  }
  return text;
}

// A fresh folder named after the running test, removed at the end of the scope.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(::testing::TempDir()) /
            ("speedlm_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace speedlm::test_util
