// Reads one JSON object field by field, tracking the key path for error messages,
// and rejects keys nobody read: "[config] mixers.attn.heads = 0: must be >= 1",
// "[config] ffn.hiden: unknown key".
#pragma once

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "speedlm/status.h"

namespace speedlm {

class JsonFields {
 public:
  JsonFields(const nlohmann::json& obj, std::string path, std::string where = "config");

  // Each getter leaves `out` unchanged when the key is absent and not required.
  Status get_int(const std::string& key, int64_t& out, int64_t min, int64_t max, bool required = false);
  Status get_float(const std::string& key, double& out, double min, double max, bool required = false);
  Status get_bool(const std::string& key, bool& out, bool required = false);
  Status get_string(const std::string& key, std::string& out, const std::vector<std::string>& allowed = {},
                    bool required = false);
  Status get_string_list(const std::string& key, std::vector<std::string>& out, bool required = false);
  // A nested object (absent: returns a null json and ok unless required).
  Status get_object(const std::string& key, nlohmann::json& out, bool required = false);
  // A non-empty list of objects.
  Status get_object_list(const std::string& key, std::vector<nlohmann::json>& out, bool required = false);
  bool has(const std::string& key) const;
  // Errors for every key that no getter asked about.
  Status finish() const;
  std::string path_of(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  Status error(const std::string& key, const std::string& what) const;

 private:
  const nlohmann::json* find(const std::string& key);
  Status missing(const std::string& key) const;
  const nlohmann::json& obj_;
  std::string path_;
  std::string where_;
  std::set<std::string> seen_;
};

}  // namespace speedlm
