#include "train/dataset.h"

#include <bit>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/log.h"
#include "io/atomic_file.h"

namespace speedlm::data {

namespace {

constexpr const char* kWhere = "dataset";
static_assert(std::endian::native == std::endian::little, ".bin files are little-endian int32, written raw");

using nlohmann::json;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Status write_ids(const std::string& path, const std::vector<int32_t>& ids) {
  return io::write_file_atomic(
      path, std::string_view(reinterpret_cast<const char*>(ids.data()), ids.size() * sizeof(int32_t)));
}

Result<std::vector<int32_t>> read_ids(const std::string& path, int64_t expected_count, int64_t vocab_size) {
  Result<std::string> bytes = io::read_file(path);
  if (!bytes) return bytes.status();
  if (bytes->size() % sizeof(int32_t) != 0)
    return Status::errorf(kWhere, "{}: size {} bytes is not a multiple of 4 (truncated file?)", path, bytes->size());
  const int64_t count = static_cast<int64_t>(bytes->size() / sizeof(int32_t));
  if (count != expected_count)
    return Status::errorf(kWhere, "{}: holds {} tokens, {} says {}", path, count, kMetaFile, expected_count);
  std::vector<int32_t> ids(static_cast<size_t>(count));
  std::memcpy(ids.data(), bytes->data(), bytes->size());
  for (int64_t i = 0; i < count; ++i)
    if (ids[i] < 0 || ids[i] >= vocab_size)
      return Status::errorf(kWhere, "{}: token {} = {}: must be in [0, {}) (the tokenizer's vocab_size)", path, i,
                            ids[i], vocab_size);
  return ids;
}

Result<DatasetMeta> parse_meta(const std::string& path) {
  Result<std::string> text = io::read_file(path);
  if (!text) return text.status();
  json j;
  try {
    j = json::parse(*text);
  } catch (const json::parse_error& e) {
    return Status::errorf(kWhere, "{}: invalid JSON: {}", path, e.what());
  }
  if (!j.is_object()) return Status::errorf(kWhere, "{}: top level must be an object", path);
  DatasetMeta m;
  const std::pair<const char*, int64_t*> ints[] = {{"vocab_size", &m.vocab_size},     {"train_tokens", &m.train_tokens},
                                                   {"val_tokens", &m.val_tokens},     {"train_bytes", &m.train_bytes},
                                                   {"val_bytes", &m.val_bytes}};
  for (const auto& [key, value] : j.items()) {
    bool known = key == "source";
    for (const auto& [name, field] : ints) known = known || key == name;
    if (!known) return Status::errorf(kWhere, "{}: unknown key \"{}\"", path, key);
  }
  for (const auto& [name, field] : ints) {
    if (!j.contains(name)) return Status::errorf(kWhere, "{}: missing key \"{}\"", path, name);
    const json& v = j[name];
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      return Status::errorf(kWhere, "{}: {} = {}: must be an integer >= 0", path, name, v.dump());
    *field = v.get<int64_t>();
  }
  if (!j.contains("source") || !j["source"].is_string())
    return Status::errorf(kWhere, "{}: source = {}: must be a string", path,
                          j.contains("source") ? j["source"].dump() : "(missing)");
  m.source = j["source"].get<std::string>();
  return m;
}

}  // namespace

Result<DatasetMeta> prepare_dataset(const std::string& text_path, const std::string& out_dir, int32_t vocab_size,
                                    const SplitOptions& split) {
  SPEEDLM_TRY(split_check(split));
  Result<std::string> text = io::read_file(text_path);
  if (!text) return text.status();
  TextSplit parts = split_train_val(*text, split);
  if (parts.train.empty() || parts.val.empty())
    return Status::errorf(kWhere,
                          "{}: {} bytes give an empty {} part (with split.block_lines = {} and split.val_every = {}, "
                          "the text needs more than {} lines)",
                          text_path, text->size(), parts.train.empty() ? "train" : "validation", split.block_lines,
                          split.val_every, (split.val_every - 1) * split.block_lines);

  auto t0 = std::chrono::steady_clock::now();
  Result<io::BpeTokenizer> tok = io::BpeTokenizer::train(parts.train, vocab_size);
  if (!tok) return tok.status();
  const double train_s = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> train_ids = tok->encode(parts.train);
  const std::vector<int32_t> val_ids = tok->encode(parts.val);
  const double encode_s = seconds_since(t0);

  DatasetMeta meta;
  meta.vocab_size = tok->vocab_size();
  meta.train_tokens = static_cast<int64_t>(train_ids.size());
  meta.val_tokens = static_cast<int64_t>(val_ids.size());
  meta.train_bytes = static_cast<int64_t>(parts.train.size());
  meta.val_bytes = static_cast<int64_t>(parts.val.size());
  meta.source = text_path;
  log_info("[dataset] {}: tokenizer ({} tokens) trained in {:.2f} s on {} bytes; encoded {} bytes in {:.2f} s",
           text_path, meta.vocab_size, train_s, meta.train_bytes, meta.train_bytes + meta.val_bytes, encode_s);
  log_info("[dataset] train {} tokens / {} bytes, val {} tokens / {} bytes", meta.train_tokens, meta.train_bytes,
           meta.val_tokens, meta.val_bytes);

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return Status::errorf(kWhere, "{}: cannot create the folder: {}", out_dir, ec.message());
  const std::filesystem::path dir(out_dir);
  SPEEDLM_TRY(tok->save(dir / kTokenizerFile));
  SPEEDLM_TRY(write_ids(dir / kTrainFile, train_ids));
  SPEEDLM_TRY(write_ids(dir / kValFile, val_ids));
  const json j = {{"vocab_size", meta.vocab_size},   {"train_tokens", meta.train_tokens},
                  {"val_tokens", meta.val_tokens},   {"train_bytes", meta.train_bytes},
                  {"val_bytes", meta.val_bytes},     {"source", meta.source}};
  SPEEDLM_TRY(io::write_file_atomic(dir / kMetaFile, j.dump(1) + "\n"));
  return meta;
}

Result<Dataset> load_dataset(const std::string& dir) {
  const std::filesystem::path d(dir);
  Result<DatasetMeta> meta = parse_meta(d / kMetaFile);
  if (!meta) return meta.status();
  Result<io::BpeTokenizer> tok = io::BpeTokenizer::load(d / kTokenizerFile);
  if (!tok) return tok.status();
  if (tok->vocab_size() != meta->vocab_size)
    return Status::errorf(kWhere, "{}: vocab_size = {}, but {} has {} tokens", (d / kMetaFile).string(),
                          meta->vocab_size, (d / kTokenizerFile).string(), tok->vocab_size());
  Result<std::vector<int32_t>> train = read_ids(d / kTrainFile, meta->train_tokens, meta->vocab_size);
  if (!train) return train.status();
  Result<std::vector<int32_t>> val = read_ids(d / kValFile, meta->val_tokens, meta->vocab_size);
  if (!val) return val.status();
  return Dataset{std::move(*tok), std::move(*train), std::move(*val), std::move(*meta)};
}

}  // namespace speedlm::data
