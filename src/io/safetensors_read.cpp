// safetensors reading and validation.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "io/safetensors.h"

namespace speedlm::io {

namespace {

using nlohmann::json;

// The reference implementation's anti-DoS limit on the JSON header.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// safetensors dtypes speedlm does not load (research/evaluation.md §4.1).
const std::set<std::string, std::less<>> kUnsupportedDtypes = {
    "BOOL", "U8", "I8", "I16", "U16", "U32", "I64", "U64", "F64", "C64", "F8_E4M3", "F8_E5M2",
    "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2"};

template <typename... Args>
Status fail(const std::string& origin, fmt::format_string<Args...> f, Args&&... args) {
  return Status::error("safetensors", origin + ": " + fmt::format(f, std::forward<Args>(args)...));
}

// A JSON value for an error message, cut short.
std::string brief(const json& v) {
  std::string s = v.dump();
  return s.size() <= 60 ? s : s.substr(0, 57) + "...";
}

// One tensor's header entry, validated against the data buffer's size.
struct Entry {
  std::string name;
  std::string dtype;  // as in the file
  Shape shape;
  uint64_t begin = 0, end = 0;
};

// F16 -> F32, exact for every value (subnormals, infinities and NaN payloads included).
float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0) {
    float v = std::ldexp(static_cast<float>(man), -24);
    return sign ? -v : v;
  }
  uint32_t bits = sign | (exp == 0x1f ? 0x7f800000u : (exp + 112) << 23) | (man << 13);
  return std::bit_cast<float>(bits);
}

// Parses the header, rejecting duplicate keys in any object (nlohmann would keep the last).
Result<json> parse_json(std::string_view text, const std::string& origin) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto check = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == json::parse_event_t::object_end) open_objects.pop_back();
    if (event == json::parse_event_t::key && !open_objects.back().insert(parsed.get<std::string>()).second &&
        duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  // nlohmann stops at a NUL byte as if the input ended there.
  if (size_t nul = text.find('\0'); nul != std::string_view::npos)
    return fail(origin, "header is not valid JSON: NUL byte at header offset {}", nul);
  json header;
  try {
    header = json::parse(text.begin(), text.end(), check);
  } catch (const json::exception& e) {
    return fail(origin, "header is not valid JSON: {}", e.what());
  }
  if (!duplicate.empty()) return fail(origin, "duplicate key '{}' in the header", duplicate);
  if (!header.is_object()) return fail(origin, "header is not a JSON object: {}", brief(header));
  return header;
}

Status parse_metadata(const json& v, const std::string& origin, Metadata* out) {
  if (!v.is_object()) return fail(origin, "__metadata__ is not an object: {}", brief(v));
  for (const auto& [key, value] : v.items()) {
    if (!value.is_string()) return fail(origin, "__metadata__.{} is not a string: {}", key, brief(value));
    (*out)[key] = value.get<std::string>();
  }
  return Status::ok();
}

Result<const json*> field(const json& entry, const char* key, const std::string& name, const std::string& origin) {
  auto it = entry.find(key);
  if (it == entry.end()) return fail(origin, "tensor '{}': missing field '{}'", name, key);
  return &*it;
}

// Checks dtype, shape and data_offsets; data_size is the size of the data buffer.
Result<Entry> parse_entry(const std::string& name, const json& v, uint64_t data_size, const std::string& origin) {
  if (!v.is_object()) return fail(origin, "tensor '{}': entry is not an object: {}", name, brief(v));
  Result<const json*> dtype = field(v, "dtype", name, origin), shape = field(v, "shape", name, origin),
                      offsets = field(v, "data_offsets", name, origin);
  SPEEDLM_TRY(dtype);
  SPEEDLM_TRY(shape);
  SPEEDLM_TRY(offsets);
  Entry e{name, "", {}, 0, 0};
  if (!(*dtype)->is_string()) return fail(origin, "tensor '{}': dtype is not a string: {}", name, brief(**dtype));
  e.dtype = (*dtype)->get<std::string>();
  if (kUnsupportedDtypes.count(e.dtype))
    return fail(origin, "unsupported dtype {} for tensor '{}' (speedlm reads F32, BF16, I32, F16)", e.dtype, name);
  if (e.dtype != "F32" && e.dtype != "BF16" && e.dtype != "I32" && e.dtype != "F16")
    return fail(origin, "unknown dtype '{}' for tensor '{}'", e.dtype, name);
  uint64_t elem = e.dtype == "BF16" || e.dtype == "F16" ? 2 : 4;
  if (!(*shape)->is_array()) return fail(origin, "tensor '{}': shape is not an array: {}", name, brief(**shape));
  uint64_t bytes = elem;
  for (size_t i = 0; i < (*shape)->size(); ++i) {
    const json& d = (**shape)[i];
    if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return fail(origin, "tensor '{}': shape[{}] = {}: not a non-negative integer", name, i, brief(d));
    e.shape.push_back(d.get<int64_t>());
    if (__builtin_mul_overflow(bytes, d.get<uint64_t>(), &bytes))
      return fail(origin, "tensor '{}': shape {} is too large", name, brief(**shape));
  }
  const json& o = **offsets;
  if (!o.is_array() || o.size() != 2 || !o[0].is_number_unsigned() || !o[1].is_number_unsigned())
    return fail(origin, "tensor '{}': data_offsets = {}: not two non-negative integers", name, brief(o));
  e.begin = o[0].get<uint64_t>();
  e.end = o[1].get<uint64_t>();
  if (e.begin > e.end || e.end > data_size)
    return fail(origin, "tensor '{}': data_offsets [{}, {}] do not fit the {}-byte data buffer", name, e.begin, e.end,
                data_size);
  if (e.end - e.begin != bytes)
    return fail(origin, "tensor '{}': data_offsets [{}, {}] hold {} bytes but {} {} needs {}", name, e.begin, e.end,
                e.end - e.begin, e.dtype, shape_str(e.shape), bytes);
  return e;
}

// The byte ranges must tile the data buffer exactly, like the reference validator requires.
Status check_layout(std::vector<Entry>& entries, uint64_t data_size, const std::string& origin) {
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  uint64_t cursor = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < cursor)
      return fail(origin, "tensor '{}': data_offsets [{}, {}] overlap tensor '{}' [{}, {}]", e.name, e.begin, e.end,
                  prev->name, prev->begin, prev->end);
    if (e.begin > cursor)
      return fail(origin, "tensor '{}': data_offsets [{}, {}] leave a gap after byte {}", e.name, e.begin, e.end,
                  cursor);
    cursor = e.end;
    prev = &e;
  }
  if (cursor != data_size)
    return fail(origin, "the tensors cover {} bytes but the data buffer has {} (trailing bytes)", cursor, data_size);
  return Status::ok();
}

Tensor load_tensor(const Entry& e, const char* data) {
  const char* src = data + e.begin;
  if (e.dtype == "F16") {
    Tensor t = Tensor::empty(e.shape, DType::F32);
    for (int64_t i = 0; i < t.numel(); ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      t.f32()[i] = f16_to_f32(h);
    }
    return t;
  }
  DType dtype = e.dtype == "F32" ? DType::F32 : e.dtype == "BF16" ? DType::BF16 : DType::I32;
  Tensor t = Tensor::empty(e.shape, dtype);
  if (t.nbytes()) std::memcpy(t.data<char>(), src, t.nbytes());
  return t;
}

}  // namespace

Result<SafeTensors> parse_safetensors(std::string_view bytes, const std::string& origin) {
  uint64_t header_size = 0;
  if (bytes.size() < sizeof(header_size))
    return fail(origin, "file is {} bytes, too short for the 8-byte header size", bytes.size());
  std::memcpy(&header_size, bytes.data(), sizeof(header_size));
  uint64_t rest = bytes.size() - sizeof(header_size);
  if (header_size > kMaxHeaderBytes)
    return fail(origin, "header size {} exceeds the {}-byte limit", header_size, kMaxHeaderBytes);
  if (header_size > rest)
    return fail(origin, "header size {} exceeds the {} bytes that follow it (truncated file?)", header_size, rest);
  std::string_view data = bytes.substr(sizeof(header_size) + header_size);
  Result<json> header = parse_json(bytes.substr(sizeof(header_size), header_size), origin);
  SPEEDLM_TRY(header);
  SafeTensors out;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header->items()) {
    if (key == "__metadata__") {
      SPEEDLM_TRY(parse_metadata(value, origin, &out.metadata));
      continue;
    }
    Result<Entry> e = parse_entry(key, value, data.size(), origin);
    SPEEDLM_TRY(e);
    entries.push_back(std::move(*e));
  }
  SPEEDLM_TRY(check_layout(entries, data.size(), origin));
  for (const Entry& e : entries) out.tensors.emplace(e.name, load_tensor(e, data.data()));
  return out;
}

Result<SafeTensors> read_safetensors(const std::string& path) {
  Result<MappedFile> file = MappedFile::open(path);
  SPEEDLM_TRY(file);
  return parse_safetensors(file->bytes(), path);
}

}  // namespace speedlm::io
