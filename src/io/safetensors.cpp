// safetensors writing; reading is in safetensors_read.cpp.
#include "io/safetensors.h"

#include <bit>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"

namespace speedlm::io {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian: add byte swapping");

namespace {

const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
  }
  return "?";
}

// The 8-byte header size and the JSON header, padded with spaces to a multiple of 8 bytes.
// ordered_json keeps the header in the given order, like the tensors' bytes.
Result<std::string> build_header(const NamedTensors& tensors, const Metadata& metadata, const std::string& origin) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__")
      return Status::errorf("safetensors", "{}: tensor name '__metadata__' is reserved", origin);
    if (!seen.insert(name).second) return Status::errorf("safetensors", "{}: duplicate tensor name '{}'", origin, name);
    if (!t.defined()) return Status::errorf("safetensors", "{}: tensor '{}' is undefined", origin, name);
    nlohmann::ordered_json entry;
    entry["dtype"] = safetensors_dtype(t.dtype());
    entry["shape"] = t.shape();
    entry["data_offsets"] = {offset, offset + t.nbytes()};
    header[name] = std::move(entry);
    offset += t.nbytes();
  }
  std::string json;
  try {
    json = header.dump();
  } catch (const nlohmann::ordered_json::exception& e) {
    return Status::errorf("safetensors", "{}: a tensor name or metadata string is not valid UTF-8 ({})", origin,
                          e.what());
  }
  json.append((8 - json.size() % 8) % 8, ' ');
  uint64_t size = json.size();
  std::string out(sizeof(size), '\0');
  std::memcpy(out.data(), &size, sizeof(size));
  return out + json;
}

std::string_view tensor_bytes(const Tensor& t) { return {t.data<const char>(), t.nbytes()}; }

}  // namespace

Result<std::string> serialize_safetensors(const NamedTensors& tensors, const Metadata& metadata) {
  Result<std::string> out = build_header(tensors, metadata, "<memory>");
  SPEEDLM_TRY(out);
  for (const auto& [name, t] : tensors) out->append(tensor_bytes(t));
  return out;
}

Status write_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  Result<std::string> header = build_header(tensors, metadata, path);
  SPEEDLM_TRY(header);
  std::vector<std::string_view> pieces{*header};
  for (const auto& [name, t] : tensors) pieces.push_back(tensor_bytes(t));
  return write_file_atomic(path, pieces);
}

}  // namespace speedlm::io
