// speedlm's public API: what the command-line tool (and any other client) calls.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "speedlm/status.h"

namespace speedlm {

// ---- data ----
struct PrepareDataOptions {
  std::string text_path;  // plain UTF-8 text, or (format "kjv") raw `bible` output
  std::string format = "text";  // text | kjv (cleaned into out_dir/text.txt first)
  std::string out_dir;    // receives tokenizer.json, train.bin, val.bin, meta.json
  int64_t vocab_size = 4096;
};
Status prepare_data(const PrepareDataOptions& opt);

// ---- training ----
struct TrainOptions {
  std::string config_path;
  std::string data_dir;
  std::string out_dir;
  bool resume = false;
  int threads = 0;              // 0: all cores
  int64_t steps = 0;            // > 0 overrides train.steps (the length of the LR schedule)
  int64_t stop_at = 0;          // > 0: checkpoint and stop after this step; --resume continues
  double time_budget_s = 0.0;   // > 0: stop after this much training wall time (evals excluded)
  double eval_every_s = 0.0;    // > 0: validate every this many seconds of training time
  std::string precision = "fp32";  // fp32 | bf16
  std::string gemm_backend;     // "" (default onednn) | onednn | openblas
  bool quiet = false;
};
struct TrainReport {
  int64_t params = 0;
  int64_t steps = 0;
  double tokens_per_s = 0.0;   // training tokens / training wall time (evals excluded)
  double train_seconds = 0.0;
  double gemm_gflops = 0.0;    // measured GEMM rate (1024^3, the run's precision) used for MFU
  double mfu = 0.0;            // 6 * params * tokens/s / GEMM FLOP/s
  double final_val_bpb = 0.0;
  std::vector<float> losses;   // every step's training loss (all steps, resumed ones included)
  std::vector<std::pair<double, double>> curve;  // (training seconds, validation bits per byte)
};
Result<TrainReport> train(const TrainOptions& opt);

// ---- evaluation ----
// Expert load of one MoE layer: each expert's share of the routed token slots.
struct MoeLoadReport {
  int64_t layer = 0;
  std::vector<double> fraction;  // [E]
  double max_over_mean = 0.0;    // 1 at perfect balance
  double dropped_fraction = 0.0;  // slots dropped by the capacity limit
};
struct EvalReport {
  double val_bpb = 0.0;
  double val_loss = 0.0;  // nats per token
  int64_t tokens = 0;
  std::vector<MoeLoadReport> moe_load;  // one per MoE layer
};
Result<EvalReport> evaluate(const std::string& model_dir, const std::string& data_dir, int64_t max_tokens,
                            int threads = 0);

// ---- generation ----
struct GenerateOptions {
  std::string model_dir;
  std::string prompt;
  int64_t max_new_tokens = 200;
  double temperature = 0.8;
  int64_t top_k = 40;
  double top_p = 0.95;
  double repetition_penalty = 1.1;
  uint64_t seed = 0;
  int threads = 0;
};
struct GenerateReport {
  std::string text;  // generated continuation only
  int64_t prompt_tokens = 0, new_tokens = 0;
  double prefill_tokens_per_s = 0.0, decode_tokens_per_s = 0.0;
  size_t state_bytes = 0;
};
// on_text receives each decoded piece as soon as it is complete UTF-8; return false to stop.
Result<GenerateReport> generate(const GenerateOptions& opt, const std::function<bool(const std::string&)>& on_text);

// ---- benchmarks ----
struct GemmBenchRow {
  std::string backend;
  int64_t M = 0, N = 0, K = 0;
  int threads = 0;
  double gflops = 0.0;
};
// Square GEMMs (and the model's shapes where given) on each backend; seconds per shape.
Result<std::vector<GemmBenchRow>> bench_gemm(const std::vector<int64_t>& sizes, int threads, double seconds);

// Decoding memory of one layer, per sequence, from the mixer's own state (Mixer::make_state and
// MixerState::bytes / bytes_per_token): a growing cache adds bytes_per_token per token, a
// recurrent state is fixed_bytes whatever the context, a window / streaming KV cache at most its
// cap (MixerState::bytes_at).
struct KvBenchRow {
  int64_t layer = 0;
  std::string mixer;   // the config's mixer type
  std::string memory;  // memory kind (and storage dtype where it applies)
  size_t bytes_per_token = 0;
  size_t fixed_bytes = 0;
  size_t bytes_at_context = 0;  // fixed_bytes + context * bytes_per_token; a bounded cache's cap
};
// kv_dtype "" keeps each mixer's own state; f32 | bf16 | int8 overrides the attention layers'
// "kv_cache" dtype (int8 adds one f32 scale per token, kv head, K and V).
Result<std::vector<KvBenchRow>> bench_kv(const std::string& config_path, int64_t context, const std::string& kv_dtype);

}  // namespace speedlm
