// tokenizer.json for BpeTokenizer (format in bpe_tokenizer.h).
#include <cstdint>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/tokenizer/bpe_tokenizer.h"

namespace speedlm::io {

namespace {

constexpr const char* kWhere = "tokenizer";
constexpr const char* kType = "byte_bpe";
constexpr int kVersion = 1;

using nlohmann::json;

// A JSON value shown in an error message, cut short when long.
std::string show(const json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

bool is_int32(const json& v) {
  return v.is_number_integer() && v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX;
}

}  // namespace

std::string BpeTokenizer::to_json() const {
  json specials = json::object();
  for (const auto& [name, id] : specials_) specials[name] = id;
  // One merge per line keeps the file readable and diffable.
  std::string out = fmt::format("{{\"type\": \"{}\", \"version\": {}, \"vocab_size\": {},\n \"special_tokens\": {},\n",
                                kType, kVersion, vocab_size(), specials.dump());
  out += " \"merges\": [";
  for (size_t i = 0; i < merges_.size(); ++i)
    out += fmt::format("{}\n  [{}, {}]", i ? "," : "", merges_[i].first, merges_[i].second);
  out += merges_.empty() ? "]}\n" : "\n ]}\n";
  return out;
}

Result<BpeTokenizer> BpeTokenizer::from_json(std::string_view json_text, std::string_view source) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::parse_error& e) {
    return Status::errorf(kWhere, "{}: invalid JSON: {}", source, e.what());
  }
  if (!j.is_object()) return Status::errorf(kWhere, "{}: top level = {}: must be an object", source, show(j));
  for (const auto& [key, value] : j.items())
    if (key != "type" && key != "version" && key != "vocab_size" && key != "merges" && key != "special_tokens")
      return Status::errorf(kWhere, "{}: unknown key \"{}\"", source, key);
  for (const char* key : {"type", "version", "vocab_size", "merges"})
    if (!j.contains(key)) return Status::errorf(kWhere, "{}: missing key \"{}\"", source, key);

  if (j["type"] != kType)
    return Status::errorf(kWhere, "{}: type = {}: must be \"{}\"", source, show(j["type"]), kType);
  if (j["version"] != kVersion)
    return Status::errorf(kWhere, "{}: version = {}: must be {}", source, show(j["version"]), kVersion);
  if (!is_int32(j["vocab_size"]))
    return Status::errorf(kWhere, "{}: vocab_size = {}: must be an integer", source, show(j["vocab_size"]));

  const json& jm = j["merges"];
  if (!jm.is_array()) return Status::errorf(kWhere, "{}: merges = {}: must be an array", source, show(jm));
  std::vector<Merge> merges;
  merges.reserve(jm.size());
  for (size_t i = 0; i < jm.size(); ++i) {
    const json& m = jm[i];
    if (!m.is_array() || m.size() != 2 || !is_int32(m[0]) || !is_int32(m[1]))
      return Status::errorf(kWhere, "{}: merges[{}] = {}: must be a pair of integer token ids [a, b]", source, i,
                            show(m));
    merges.emplace_back(m[0].get<int32_t>(), m[1].get<int32_t>());
  }

  std::vector<std::pair<std::string, int32_t>> specials;
  if (j.contains("special_tokens")) {
    const json& js = j["special_tokens"];
    if (!js.is_object())
      return Status::errorf(kWhere, "{}: special_tokens = {}: must be an object of name: id", source, show(js));
    for (const auto& [name, id] : js.items()) {
      if (!is_int32(id))
        return Status::errorf(kWhere, "{}: special_tokens[\"{}\"] = {}: must be an integer token id", source, name,
                              show(id));
      specials.emplace_back(name, id.get<int32_t>());
    }
  }

  const int64_t vocab = j["vocab_size"].get<int64_t>();
  const int64_t expected = kNumByteTokens + static_cast<int64_t>(merges.size() + specials.size());
  if (vocab != expected)
    return Status::errorf(kWhere, "{}: vocab_size = {}: must equal 256 + {} merges + {} special tokens = {}", source,
                          vocab, merges.size(), specials.size(), expected);
  return build(std::move(merges), std::move(specials), source);
}

Status BpeTokenizer::save(const std::string& path) const { return write_file_atomic(path, to_json()); }

Result<BpeTokenizer> BpeTokenizer::load(const std::string& path) {
  Result<std::string> text = read_file(path);
  if (!text) return text.status();
  return from_json(*text, path);
}

}  // namespace speedlm::io
