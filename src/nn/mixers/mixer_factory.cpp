// The table of mixer types: config validation and construction by "type".
#include "io/json_fields.h"
#include "nn/mixer.h"
#include "nn/mixers/attention.h"
#include "nn/mixers/hymba.h"

namespace speedlm::nn {

Status validate_mixer_config(const nlohmann::json& cfg, const std::string& path, int64_t d_model) {
  if (!cfg.is_object()) return Status::error("config", path + " = " + cfg.dump() + ": must be an object");
  auto it = cfg.find("type");
  if (it == cfg.end()) return Status::error("config", path + ".type: required key is missing");
  if (*it == "attention") return AttentionMixerParams::parse(cfg, path, d_model).status();
  if (*it == "hymba") return HymbaMixerParams::parse(cfg, path, d_model).status();
  return Status::error("config", path + ".type = " + it->dump() + ": unknown mixer type (known: attention, hymba)");
}

std::unique_ptr<Mixer> make_mixer(const nlohmann::json& cfg, int64_t d_model) {
  if (cfg.at("type") == "hymba") {
    auto p = HymbaMixerParams::parse(cfg, "", d_model);
    SPEEDLM_ASSERT(p.is_ok(), "make_mixer on an unvalidated config: {}", p.status().message());
    return std::make_unique<HymbaMixer>(*p, d_model);
  }
  auto p = AttentionMixerParams::parse(cfg, "", d_model);
  SPEEDLM_ASSERT(p.is_ok(), "make_mixer on an unvalidated config: {}", p.status().message());
  return std::make_unique<AttentionMixer>(*p, d_model);
}

}  // namespace speedlm::nn
