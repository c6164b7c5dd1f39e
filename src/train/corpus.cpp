#include "train/corpus.h"

#include <optional>

#include "io/atomic_file.h"

namespace speedlm::data {

namespace {

constexpr const char* kWhere = "corpus";

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// "  12 text" -> "text"; nullopt when the line is not a verse start.
std::optional<std::string_view> verse_text(std::string_view line) {
  if (line.size() < 3 || line[0] != ' ' || line[1] != ' ') return std::nullopt;
  size_t i = 2;
  while (i < line.size() && line[i] >= '0' && line[i] <= '9') ++i;
  if (i == 2 || i >= line.size() || line[i] != ' ') return std::nullopt;
  return trim_spaces(line.substr(i + 1));
}

std::string shorten(std::string_view s) {
  return s.size() > 60 ? std::string(s.substr(0, 57)) + "..." : std::string(s);
}

}  // namespace

Result<std::string> clean_kjv_text(std::string_view raw, std::string_view source) {
  const std::string at = source.empty() ? std::string() : fmt::format("{}: ", source);
  std::string out;
  out.reserve(raw.size());
  bool after_blank = true;  // the input starts like a chapter: a heading may come first
  bool in_verse = false;
  bool any_heading = false;
  int64_t verses = 0;
  size_t line_no = 0;
  for (size_t pos = 0; pos < raw.size();) {
    size_t end = raw.find('\n', pos);
    if (end == std::string_view::npos) end = raw.size();
    const std::string_view line = raw.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    const std::string_view text = trim_spaces(line);
    if (text.empty()) {
      after_blank = true;
      continue;
    }
    if (auto verse = verse_text(line)) {
      if (in_verse) out += '\n';
      out += *verse;
      in_verse = true;
      ++verses;
    } else if (line.front() == ' ') {
      return Status::errorf(kWhere, "{}line {} = \"{}\": indented, but not a verse (\"  N text\")", at, line_no,
                            shorten(line));
    } else if (after_blank) {
      if (in_verse) out += '\n';
      out += any_heading ? "\n" : "";
      out += text;
      out += '\n';
      in_verse = false;
      any_heading = true;
    } else if (in_verse) {
      out += ' ';
      out += text;
    } else {
      return Status::errorf(kWhere, "{}line {} = \"{}\": continuation line with no verse before it", at, line_no,
                            shorten(line));
    }
    after_blank = false;
  }
  if (in_verse) out += '\n';
  if (verses == 0)
    return Status::errorf(kWhere, "{}no verse lines (\"  1 In the beginning ...\"): is it `bible` output?", at);
  return out;
}

Status prepare_kjv_corpus(const std::string& raw_path, const std::string& text_path) {
  Result<std::string> raw = io::read_file(raw_path);
  if (!raw) return raw.status();
  Result<std::string> clean = clean_kjv_text(*raw, raw_path);
  if (!clean) return clean.status();
  return io::write_file_atomic(text_path, *clean);
}

Status split_check(const SplitOptions& opt) {
  if (opt.block_lines < 1) return Status::errorf(kWhere, "split.block_lines = {}: must be >= 1", opt.block_lines);
  if (opt.val_every < 2) return Status::errorf(kWhere, "split.val_every = {}: must be >= 2", opt.val_every);
  return Status::ok();
}

TextSplit split_train_val(std::string_view text, const SplitOptions& opt) {
  SPEEDLM_ASSERT(split_check(opt).is_ok(), "{}", split_check(opt).message());
  TextSplit out;
  int64_t line = 0;
  for (size_t pos = 0; pos < text.size(); ++line) {
    size_t end = text.find('\n', pos);
    end = end == std::string_view::npos ? text.size() : end + 1;
    const int64_t block = line / opt.block_lines;
    (block % opt.val_every == opt.val_every - 1 ? out.val : out.train) += text.substr(pos, end - pos);
    pos = end;
  }
  return out;
}

}  // namespace speedlm::data
