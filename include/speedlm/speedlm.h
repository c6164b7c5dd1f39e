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
// "kv_cache" dtype (int8 adds one f32 scale per token, kv head, K and V). overrides edits the
// config first, as the arena's --set does ("d_model=128,n_layers=2": dotted keys that exist).
Result<std::vector<KvBenchRow>> bench_kv(const std::string& config_path, int64_t context, const std::string& kv_dtype,
                                         const std::string& overrides = "");

// ---- arena ----
// Trains each model config under the same budget on one task and compares them:
// parameters, training tokens/s, prefill and decode tokens/s and decoding memory at several
// context lengths, the task metric. Writes arena.md, arena.csv, speed.csv and loss.csv to
// out_dir (plots come from scripts/plot_arena.py over those CSVs).
struct ArenaOptions {
  std::vector<std::string> config_paths;  // model config JSONs (their "train" sections give lr etc.)
  std::string task = "lm";               // mqar | copy | induction | lm
  std::string data_dir;                  // lm: a folder written by prepare-data
  std::string out_dir;
  std::string budget = "1m";             // per run: "90s", "1.5m", "2min", a plain number of minutes,
                                         // or tokens: "500000tok", "300ktok", "2Mtok"
  std::vector<int64_t> seq_lens;         // grid axis: task sequence lengths (empty: the task default)
  std::vector<int64_t> d_models;         // grid axis: d_model overrides (empty: each config's own)
  std::string overrides;                 // "key=value,..." set in every config (dotted paths, JSON values)
  int64_t batch_size = 0;                // 0: the task's default (lm: the config's train.batch_size)
  double lr = 0.0;                       // 0: the config's train.lr
  int64_t vocab_size = 0;                // synthetic tasks: 0 for the task's default vocabulary
  int64_t kv_pairs = 0;                  // mqar: 0 for seq_len / 16 (Zoology's grid)
  std::vector<int64_t> contexts = {512, 1024, 2048, 4096, 8192};  // prefill/decode/memory lengths
  int64_t decode_tokens = 32;            // timed decode steps after each context
  bool skip_speed = false;               // only train and score (grids)
  int64_t test_examples = 1000;          // synthetic tasks: fixed test set size
  double stop_at = 0.0;                  // synthetic tasks: stop a run once its validation accuracy
                                         // reaches this (checked every 5% of the budget); 0: never
  int64_t eval_tokens = 65536;           // lm: validation tokens for bits per byte
  std::string prompt = "The";            // lm: the best model continues it
  int64_t sample_tokens = 120;
  int threads = 0;
  std::string precision = "fp32";        // fp32 | bf16 (training matmuls)
  uint64_t seed = 1234;
};
struct ArenaSpeed {
  int64_t context = 0;
  double prefill_tokens_per_s = 0.0;  // one forward over `context` fresh tokens, batch 1
  double decode_tokens_per_s = 0.0;   // decode_tokens single-token steps after that context
  size_t state_bytes = 0;             // decoding memory after the context
};
struct ArenaRow {
  std::string name;    // the config's file name without .json
  std::string config;  // its path
  int64_t seq_len = 0, d_model = 0, params = 0, steps = 0, train_tokens = 0;
  double train_seconds = 0.0, train_tokens_per_s = 0.0, final_loss = 0.0;
  std::string metric_name;  // accuracy (synthetic tasks) or val_bpb (lm)
  double metric = 0.0;
  std::vector<ArenaSpeed> speed;
  std::vector<std::pair<double, double>> curve;  // (training seconds, training loss)
};
struct ArenaReport {
  std::vector<ArenaRow> rows;
  std::string table;   // the Markdown written to arena.md
  std::string best;    // lm: the row with the lowest bits per byte; else the highest accuracy
  std::string sample;  // lm: the best model's continuation of the prompt
};
// progress receives one line at a time while the arena runs.
Result<ArenaReport> run_arena(const ArenaOptions& opt, const std::function<void(const std::string&)>& progress);

}  // namespace speedlm
