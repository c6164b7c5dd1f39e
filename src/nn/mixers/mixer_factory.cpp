// The table of mixer types: config validation and construction by "type".
#include "io/json_fields.h"
#include "nn/mixer.h"
#include "nn/mixers/attention.h"
#include "nn/mixers/delta_net.h"
#include "nn/mixers/gla.h"
#include "nn/mixers/hymba.h"
#include "nn/mixers/linear_attention.h"
#include "nn/mixers/mamba.h"
#include "nn/mixers/mamba2.h"
#include "nn/mixers/mla.h"
#include "nn/mixers/retnet.h"
#include "nn/mixers/rwkv7.h"

namespace speedlm::nn {

namespace {
const char* kKnown = "attention, linear_attention, retnet, gla, mamba2, mla, deltanet, gated_deltanet, mamba, rwkv7, hymba";
}  // namespace

Status validate_mixer_config(const nlohmann::json& cfg, const std::string& path, int64_t d_model) {
  if (!cfg.is_object()) return Status::error("config", path + " = " + cfg.dump() + ": must be an object");
  auto it = cfg.find("type");
  if (it == cfg.end()) return Status::error("config", path + ".type: required key is missing");
  // Compared as a std::string: GCC 12 reports a false -Warray-bounds on chains of json == literal.
  const std::string type = it->is_string() ? it->get<std::string>() : "";
  if (type == "attention") return AttentionMixerParams::parse(cfg, path, d_model).status();
  if (type == "linear_attention") return LinearAttentionMixerParams::parse(cfg, path, d_model).status();
  if (type == "retnet") return RetnetMixerParams::parse(cfg, path, d_model).status();
  if (type == "gla") return GlaMixerParams::parse(cfg, path, d_model).status();
  if (type == "mamba2") return Mamba2MixerParams::parse(cfg, path, d_model).status();
  if (type == "mla") return MlaMixerParams::parse(cfg, path, d_model).status();
  if (type == "deltanet" || type == "gated_deltanet") return DeltaNetMixerParams::parse(cfg, path, d_model).status();
  if (type == "mamba") return MambaMixerParams::parse(cfg, path, d_model).status();
  if (type == "rwkv7") return Rwkv7MixerParams::parse(cfg, path, d_model).status();
  if (type == "hymba") return HymbaMixerParams::parse(cfg, path, d_model).status();
  return Status::error("config", path + ".type = " + it->dump() + ": unknown mixer type (known: " + kKnown + ")");
}

namespace {
template <typename Mixer, typename Params>
std::unique_ptr<nn::Mixer> build(const nlohmann::json& cfg, int64_t d_model) {
  auto p = Params::parse(cfg, "", d_model);
  SPEEDLM_ASSERT(p.is_ok(), "make_mixer on an unvalidated config: {}", p.status().message());
  return std::make_unique<Mixer>(*p, d_model);
}
}  // namespace

std::unique_ptr<Mixer> make_mixer(const nlohmann::json& cfg, int64_t d_model) {
  const std::string type = cfg.at("type").get<std::string>();
  if (type == "linear_attention") return build<LinearAttentionMixer, LinearAttentionMixerParams>(cfg, d_model);
  if (type == "retnet") return build<RetnetMixer, RetnetMixerParams>(cfg, d_model);
  if (type == "gla") return build<GlaMixer, GlaMixerParams>(cfg, d_model);
  if (type == "mamba2") return build<Mamba2Mixer, Mamba2MixerParams>(cfg, d_model);
  if (type == "mla") return build<MlaMixer, MlaMixerParams>(cfg, d_model);
  if (type == "deltanet" || type == "gated_deltanet") return build<DeltaNetMixer, DeltaNetMixerParams>(cfg, d_model);
  if (type == "mamba") return build<MambaMixer, MambaMixerParams>(cfg, d_model);
  if (type == "rwkv7") return build<Rwkv7Mixer, Rwkv7MixerParams>(cfg, d_model);
  if (type == "hymba") return build<HymbaMixer, HymbaMixerParams>(cfg, d_model);
  return build<AttentionMixer, AttentionMixerParams>(cfg, d_model);
}

}  // namespace speedlm::nn
