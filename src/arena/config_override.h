// Command-line edits of model configs (`arena --set`, `bench kv --set`):
// "d_model=64,n_layers=2,ffn.hidden=128" sets each dotted key path (which must already exist, so
// a typo is an error) to the JSON value (text that is not JSON stays a string). Items are split
// at commas, so a value holds none.
#pragma once

#include <nlohmann/json.hpp>

#include "speedlm/status.h"

namespace speedlm::arena {

Status apply_overrides(nlohmann::json& config, const std::string& overrides);

}  // namespace speedlm::arena
