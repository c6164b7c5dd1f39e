// `speedlm bench kv`: the decoding memory a model config needs per token and at a context
// length, per layer, from each mixer's own state. Only one layer's mixer exists at a time and
// no weights are loaded, so configs of any size can be inspected.
#include <optional>

#include "memory/kv_cache.h"
#include "memory/paged_kv_cache.h"
#include "models/config.h"
#include "nn/mixer.h"
#include "speedlm/speedlm.h"

namespace speedlm {

Result<std::vector<KvBenchRow>> bench_kv(const std::string& config_path, int64_t context, const std::string& kv_dtype) {
  if (context < 0) return Status::errorf("bench", "--context = {}: must be >= 0", context);
  std::optional<ops::KvDType> dtype;
  if (!kv_dtype.empty()) {
    auto t = ops::parse_kv_dtype(kv_dtype);
    if (!t) return Status::errorf("bench", "--kv-dtype = '{}': must be f32, bf16 or int8", kv_dtype);
    dtype = t.value();
  }
  auto json = read_json_file(config_path);
  if (!json) return json.status();
  auto cfg = ModelConfig::from_json(json.value());
  if (!cfg) return cfg.status();
  std::vector<KvBenchRow> rows;
  for (int64_t i = 0; i < cfg->n_layers; ++i) {
    const nlohmann::json& mc = cfg->layer_mixer(i);
    std::unique_ptr<MixerState> state = nn::make_mixer(mc, cfg->d_model)->make_state(1);
    std::string memory = memory_kind_name(state->kind());
    if (const auto* kv = dynamic_cast<const KvCache*>(state.get()); kv && dtype) {
      state = std::make_unique<PagedKvCache>(PagedKvOptions{kv->kv_heads(), kv->head_dim(), 16, *dtype}, 1);
      memory = fmt::format("paged_kv {}", ops::kv_dtype_name(*dtype));
    } else if (dynamic_cast<const KvCache*>(state.get()) || state->kind() == MemoryKind::LatentKv) {
      memory += " f32";
    }
    KvBenchRow r;
    r.layer = i, r.mixer = mc.at("type").get<std::string>(), r.memory = memory;
    r.bytes_per_token = state->bytes_per_token(), r.fixed_bytes = state->bytes();
    r.bytes_at_context = r.fixed_bytes + static_cast<size_t>(context) * r.bytes_per_token;
    rows.push_back(r);
  }
  return rows;
}

}  // namespace speedlm
