// Text corpora for training: cleaning the KJV Bible text and the train/validation split.
//
// The KJV comes from Debian's bible-kjv package: scripts/prepare_corpus.sh runs
// `bible "gen1:1-rev22:21"` and saves its raw output. That output is, per chapter, a blank
// line, a heading ("Genesis 1"), a blank line, then the verses: each starts with two spaces,
// the verse number and a space, and long verses wrap onto continuation lines that start
// without indentation.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "speedlm/status.h"

namespace speedlm::data {

// Cleans raw `bible` output. The result has, per chapter: the heading line as it was
// ("Genesis 1"), then one line per verse: the verse text with its leading "  N " number
// removed and its wrapped lines joined by single spaces (each piece trimmed of spaces at
// both ends). Chapters are separated by one blank line. Every line ends with '\n'.
// Fails, naming the line, on a line that fits none of the shapes above, and on input with
// no verse at all; `source` (e.g. the path) prefixes error messages.
Result<std::string> clean_kjv_text(std::string_view raw, std::string_view source = "");

// Reads raw `bible` output from raw_path, cleans it, writes it atomically to text_path.
Status prepare_kjv_corpus(const std::string& raw_path, const std::string& text_path);

// Deterministic train/validation split by lines. Lines are numbered from 0 (a line keeps
// its '\n'; a last line without one counts too) and grouped into blocks of block_lines;
// block b goes to validation when b % val_every == val_every - 1, so validation takes one
// block in every val_every (5% by default), spread evenly over the whole text. Each part
// is the concatenation of its blocks in text order; together they hold every byte once.
struct SplitOptions {
  int64_t block_lines = 100;
  int64_t val_every = 20;
};

struct TextSplit {
  std::string train;
  std::string val;
};

Status split_check(const SplitOptions& opt);
// Requires split_check(opt) to pass.
TextSplit split_train_val(std::string_view text, const SplitOptions& opt = {});

}  // namespace speedlm::data
