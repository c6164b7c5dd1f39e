// Byte-level pre-tokenizer: splits text into chunks that BPE merges never cross.
// GPT-2 style, by hand over bytes (no regex, no UTF-8 decoding):
//   letters  = A-Z a-z and every byte >= 0x80 (so UTF-8 words, and invalid bytes, stay together)
//   digits   = 0-9
//   space    = ' ', '\t', '\n', '\v', '\f', '\r'
//   other    = every other byte (punctuation, control bytes, NUL)
// Chunks, tried in this order at each position:
//   1. an optional ' ' then a run of letters                   " the", "Genesis"
//   2. an optional ' ' then 1 to 3 digits                       " 123", "45"
//   3. an optional ' ' then a run of other bytes                " (", ".\x00"
//   4. a run of whitespace; when it is followed by a non-space byte and ends in ' ', that last
//      ' ' is left to lead the next chunk ("a   b" -> "a", "  ", " b")
// The chunks tile the input exactly, so concatenating them gives the input back.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace speedlm::io {

enum class ByteClass : uint8_t { Letter, Digit, Space, Other };

inline constexpr std::array<ByteClass, 256> kByteClass = [] {
  std::array<ByteClass, 256> t{};
  for (int c = 0; c < 256; ++c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c >= 0x80) t[c] = ByteClass::Letter;
    else if (c >= '0' && c <= '9') t[c] = ByteClass::Digit;
    else if (c == ' ' || (c >= '\t' && c <= '\r')) t[c] = ByteClass::Space;
    else t[c] = ByteClass::Other;
  }
  return t;
}();

inline ByteClass byte_class(char c) { return kByteClass[static_cast<uint8_t>(c)]; }

// Calls fn(std::string_view chunk) for each chunk of text, in order.
template <typename Fn>
void for_each_chunk(std::string_view text, Fn&& fn) {
  constexpr size_t kMaxDigits = 3;
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    size_t body = i;
    if (text[i] == ' ' && i + 1 < n && byte_class(text[i + 1]) != ByteClass::Space) body = i + 1;
    ByteClass k = byte_class(text[body]);
    size_t j = body + 1;
    if (k == ByteClass::Space) {
      while (j < n && byte_class(text[j]) == ByteClass::Space) ++j;
      if (j < n && j - i > 1 && text[j - 1] == ' ') --j;
    } else if (k == ByteClass::Digit) {
      while (j < n && j - body < kMaxDigits && byte_class(text[j]) == k) ++j;
    } else {
      while (j < n && byte_class(text[j]) == k) ++j;
    }
    fn(text.substr(i, j - i));
    i = j;
  }
}

}  // namespace speedlm::io
