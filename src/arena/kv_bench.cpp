// `speedlm bench kv`: the decoding memory a model config needs per token and at a context
// length, per layer, from each mixer's own state (and the FFN's, for rwkv_cmix). Only one layer's mixer exists at a time and
// no weights are loaded, so configs of any size can be inspected.
#include <optional>

#include "arena/config_override.h"
#include "memory/paged_kv_cache.h"
#include "models/config.h"
#include "nn/mixer.h"
#include "speedlm/speedlm.h"

namespace speedlm {

Result<std::vector<KvBenchRow>> bench_kv(const std::string& config_path, int64_t context, const std::string& kv_dtype,
                                         const std::string& overrides) {
  if (context < 0) return Status::errorf("bench", "--context = {}: must be >= 0", context);
  std::optional<ops::KvDType> dtype;
  if (!kv_dtype.empty()) {
    auto t = ops::parse_kv_dtype(kv_dtype);
    if (!t) return Status::errorf("bench", "--kv-dtype = '{}': must be f32, bf16 or int8", kv_dtype);
    dtype = t.value();
  }
  auto json = read_json_file(config_path);
  if (!json) return json.status();
  if (Status st = arena::apply_overrides(*json, overrides); !st) return st;
  auto cfg = ModelConfig::from_json(json.value());
  if (!cfg) return cfg.status();
  std::vector<KvBenchRow> rows;
  for (int64_t i = 0; i < cfg->n_layers; ++i) {
    nlohmann::json mc = cfg->layer_mixer(i);
    // --kv-dtype overrides the attention layers' own "kv_cache" dtype.
    if (dtype && mc.at("type") == "attention") mc["kv_cache"]["dtype"] = ops::kv_dtype_name(*dtype);
    std::unique_ptr<MixerState> state = nn::make_mixer(mc, cfg->d_model)->make_state(1);
    std::string memory = memory_kind_name(state->kind());
    if (const auto* kv = dynamic_cast<const PagedKvCache*>(state.get()))
      memory = fmt::format("{} {}", memory, ops::kv_dtype_name(kv->layout().dtype));
    else if (state->kind() == MemoryKind::LatentKv)
      memory += " f32";
    KvBenchRow r;
    r.layer = i, r.mixer = mc.at("type").get<std::string>(), r.memory = memory;
    // A window or streaming cache stops growing: bytes_per_token 0, bytes_at_context its cap.
    r.bytes_per_token = state->bytes_per_token(), r.fixed_bytes = state->bytes();
    r.bytes_at_context = state->bytes_at(context);
    // RWKV's channel mix keeps the layer's last token too (nn/rwkv_cmix.h): constant bytes.
    if (cfg->layer_ffn(i).type == "rwkv_cmix") {
      const size_t shift = static_cast<size_t>(cfg->d_model) * sizeof(float);
      r.memory += " + ffn", r.fixed_bytes += shift, r.bytes_at_context += shift;
    }
    rows.push_back(r);
  }
  return rows;
}

}  // namespace speedlm
