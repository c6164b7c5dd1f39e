// safetensors files (research/evaluation.md §4.1): an 8-byte little-endian u64 N, N bytes of
// JSON header {"__metadata__": {str: str}, NAME: {"dtype", "shape", "data_offsets": [BEGIN,
// END)}}, then the tensors' bytes, row-major, little-endian, offsets relative to that buffer.
//
// Writing: dtypes F32, BF16, I32; the header lists the tensors in the given order (metadata
// first) and is padded with spaces to a multiple of 8 bytes, so the data starts 8-byte
// aligned; the data follows in the same order, packed. Files are written atomically.
// Reading: every field is validated like the reference implementation does (header size and
// JSON, no duplicate keys, each entry's dtype/shape/data_offsets, byte ranges that match
// shape * dtype size, do not overlap, leave no gap and cover the whole buffer). F32, BF16 and
// I32 load as such; F16 is converted to F32 (exactly). Other dtypes are reported as unsupported.
// Errors read "[safetensors] <file>: ..." and name the tensor, field and value.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "speedlm/status.h"
#include "speedlm/tensor.h"

namespace speedlm::io {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using Metadata = std::map<std::string, std::string>;

struct SafeTensors {
  std::map<std::string, Tensor> tensors;
  Metadata metadata;
};

// The whole file's bytes.
Result<std::string> serialize_safetensors(const NamedTensors& tensors, const Metadata& metadata = {});
Status write_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});

// origin names the bytes in error messages (a path, or e.g. "<memory>").
Result<SafeTensors> parse_safetensors(std::string_view bytes, const std::string& origin);
Result<SafeTensors> read_safetensors(const std::string& path);

}  // namespace speedlm::io
