#include "arena/config_override.h"

#include <sstream>

namespace speedlm::arena {

Status apply_overrides(nlohmann::json& config, const std::string& overrides) {
  std::stringstream items(overrides);
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status::errorf("config", "--set = '{}': expected key=value", item);
    std::string path = item.substr(0, eq), text = item.substr(eq + 1);
    nlohmann::json* node = &config;
    std::stringstream keys(path);
    std::string key;
    while (std::getline(keys, key, '.')) {
      if (!node->is_object() || !node->contains(key))
        return Status::errorf("config", "--set {}: the config has no key '{}'", path, key);
      node = &(*node)[key];
    }
    // A JSON value where it parses (numbers, true, lists), else the text as a string.
    nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
    *node = value.is_discarded() ? nlohmann::json(text) : value;
  }
  return Status::ok();
}

}  // namespace speedlm::arena
