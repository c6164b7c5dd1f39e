// Helpers shared by the safetensors tests.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include "speedlm/tensor.h"

namespace speedlm::io {

// A safetensors file from its JSON header (used as given, no padding) and data buffer.
inline std::string st_file(const std::string& header, const std::string& data) {
  uint64_t size = header.size();
  std::string out(sizeof(size), '\0');
  std::memcpy(out.data(), &size, sizeof(size));
  return out + header + data;
}

inline std::string bytes_of(const Tensor& t) { return {t.data<const char>(), t.nbytes()}; }

}  // namespace speedlm::io
