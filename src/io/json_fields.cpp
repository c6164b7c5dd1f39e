#include "io/json_fields.h"

#include <algorithm>
#include <cmath>

namespace speedlm {

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

JsonFields::JsonFields(const nlohmann::json& obj, std::string path, std::string where)
    : obj_(obj), path_(std::move(path)), where_(std::move(where)) {}

Status JsonFields::error(const std::string& key, const std::string& what) const {
  return Status::error(where_, path_of(key) + what);
}

bool JsonFields::has(const std::string& key) const { return obj_.is_object() && obj_.contains(key); }

Status JsonFields::missing(const std::string& key) const {
  // A missing required key is most often a misspelt one: name the misspelling.
  if (obj_.is_object())
    for (auto it = obj_.begin(); it != obj_.end(); ++it)
      if (!seen_.count(it.key()) && edit_distance(it.key(), key) <= 2)
        return error(it.key(), ": unknown key (did you mean \"" + key + "\"?)");
  return error(key, ": required key is missing");
}

const nlohmann::json* JsonFields::find(const std::string& key) {
  seen_.insert(key);
  if (!obj_.is_object()) return nullptr;
  auto it = obj_.find(key);
  return it == obj_.end() ? nullptr : &*it;
}

Status JsonFields::get_int(const std::string& key, int64_t& out, int64_t min, int64_t max, bool required) {
  const nlohmann::json* v = find(key);
  if (!v) return required ? missing(key) : Status::ok();
  bool integral = v->is_number_integer() || (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>());
  if (!integral) return error(key, " = " + v->dump() + ": must be an integer");
  double d = v->get<double>();
  if (d < static_cast<double>(min) || d > static_cast<double>(max))
    return error(key, fmt::format(" = {}: must be in [{}, {}]", v->dump(), min, max));
  out = static_cast<int64_t>(d);
  return Status::ok();
}

Status JsonFields::get_float(const std::string& key, double& out, double min, double max, bool required) {
  const nlohmann::json* v = find(key);
  if (!v) return required ? missing(key) : Status::ok();
  if (!v->is_number()) return error(key, " = " + v->dump() + ": must be a number");
  double d = v->get<double>();
  if (!(d >= min && d <= max)) return error(key, fmt::format(" = {}: must be in [{}, {}]", v->dump(), min, max));
  out = d;
  return Status::ok();
}

Status JsonFields::get_bool(const std::string& key, bool& out, bool required) {
  const nlohmann::json* v = find(key);
  if (!v) return required ? missing(key) : Status::ok();
  if (!v->is_boolean()) return error(key, " = " + v->dump() + ": must be true or false");
  out = v->get<bool>();
  return Status::ok();
}

Status JsonFields::get_string(const std::string& key, std::string& out, const std::vector<std::string>& allowed,
                              bool required) {
  const nlohmann::json* v = find(key);
  if (!v) return required ? missing(key) : Status::ok();
  if (!v->is_string()) return error(key, " = " + v->dump() + ": must be a string");
  std::string s = v->get<std::string>();
  if (!allowed.empty()) {
    bool ok = false;
    std::string list;
    for (const std::string& a : allowed) {
      ok = ok || a == s;
      list += (list.empty() ? "" : ", ") + a;
    }
    if (!ok) return error(key, " = " + v->dump() + ": must be one of " + list);
  }
  out = s;
  return Status::ok();
}

Status JsonFields::get_string_list(const std::string& key, std::vector<std::string>& out, bool required) {
  const nlohmann::json* v = find(key);
  if (!v) return required ? missing(key) : Status::ok();
  if (!v->is_array() || v->empty()) return error(key, " = " + v->dump() + ": must be a non-empty list of strings");
  std::vector<std::string> r;
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string())
      return error(key, fmt::format("[{}] = {}: must be a string", i, (*v)[i].dump()));
    r.push_back((*v)[i].get<std::string>());
  }
  out = std::move(r);
  return Status::ok();
}

Status JsonFields::get_object(const std::string& key, nlohmann::json& out, bool required) {
  const nlohmann::json* v = find(key);
  if (!v) return required ? missing(key) : Status::ok();
  if (!v->is_object()) return error(key, " = " + v->dump() + ": must be an object");
  out = *v;
  return Status::ok();
}

Status JsonFields::get_object_list(const std::string& key, std::vector<nlohmann::json>& out, bool required) {
  const nlohmann::json* v = find(key);
  if (!v) return required ? missing(key) : Status::ok();
  if (!v->is_array() || v->empty()) return error(key, " = " + v->dump() + ": must be a non-empty list of objects");
  for (size_t i = 0; i < v->size(); ++i)
    if (!(*v)[i].is_object()) return error(key, fmt::format("[{}] = {}: must be an object", i, (*v)[i].dump()));
  out = v->get<std::vector<nlohmann::json>>();
  return Status::ok();
}

Status JsonFields::finish() const {
  if (!obj_.is_object()) return Status::error(where_, (path_.empty() ? "top level" : path_) + ": must be an object");
  for (auto it = obj_.begin(); it != obj_.end(); ++it)
    if (!seen_.count(it.key())) return error(it.key(), ": unknown key");
  return Status::ok();
}

}  // namespace speedlm
