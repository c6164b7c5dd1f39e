// speedlm: the command-line client of the library. One table of subcommands, each
// with its own argument table (args.h) that drives parsing and --help.
#include <cstdio>
#include <string>
#include <vector>

#include "args.h"
#include "speedlm/speedlm.h"

namespace speedlm::cli {

int run_arena_cmd(const ParsedArgs& a);  // arena_cmd.cpp

namespace {

int fail(const Status& s) {
  std::fprintf(stderr, "error: %s\n", s.message().c_str());
  return 1;
}

int run_prepare(const ParsedArgs& a) {
  PrepareDataOptions o{a.str("text"), a.str("format"), a.str("out"), a.integer("vocab-size")};
  Status s = prepare_data(o);
  if (!s) return fail(s);
  std::printf("data written to %s\n", o.out_dir.c_str());
  return 0;
}

int run_train(const ParsedArgs& a) {
  TrainOptions o;
  o.config_path = a.str("config"), o.data_dir = a.str("data"), o.out_dir = a.str("out");
  o.resume = a.flag("resume"), o.threads = static_cast<int>(a.integer("threads")), o.steps = a.integer("steps");
  o.stop_at = a.integer("stop-at");
  o.time_budget_s = a.real("time-budget"), o.eval_every_s = a.real("eval-every-seconds");
  o.precision = a.str("precision"), o.gemm_backend = a.str("gemm"), o.quiet = a.flag("quiet");
  if (!o.resume && o.config_path.empty()) return fail(Status::error("train", "--config is required unless --resume"));
  auto r = train(o);
  if (!r) return fail(r.status());
  if (a.has("report")) {
    std::string curve;
    for (auto [t, b] : r->curve) curve += fmt::format("{}[{:.3f}, {:.5f}]", curve.empty() ? "" : ", ", t, b);
    std::string json = fmt::format(
        "{{\"framework\": \"speedlm\", \"precision\": \"{}\", \"threads\": {}, \"params\": {}, \"steps\": {}, "
        "\"tokens_per_s\": {:.2f}, \"train_seconds\": {:.3f}, \"gemm_gflops\": {:.2f}, \"mfu\": {:.4f}, "
        "\"final_val_bpb\": {:.5f}, \"curve\": [{}]}}\n",
        o.precision, o.threads, r->params, r->steps, r->tokens_per_s, r->train_seconds, r->gemm_gflops, r->mfu,
        r->final_val_bpb, curve);
    FILE* f = std::fopen(a.str("report").c_str(), "w");
    if (!f) return fail(Status::errorf("train", "--report = '{}': cannot open for writing", a.str("report")));
    std::fputs(json.c_str(), f);
    std::fclose(f);
  }
  return 0;
}

int run_eval(const ParsedArgs& a) {
  auto r = evaluate(a.str("model"), a.str("data"), a.integer("max-tokens"), static_cast<int>(a.integer("threads")));
  if (!r) return fail(r.status());
  std::printf("validation: %.4f bits/byte, %.4f nats/token over %lld tokens\n", r->val_bpb, r->val_loss,
              static_cast<long long>(r->tokens));
  for (const MoeLoadReport& m : r->moe_load) {
    std::printf("moe layer %lld: max/mean load %.2f, dropped %.2f%%, expert load %%:", static_cast<long long>(m.layer),
                m.max_over_mean, 100.0 * m.dropped_fraction);
    for (double f : m.fraction) std::printf(" %.1f", 100.0 * f);
    std::printf("\n");
  }
  return 0;
}

int run_generate(const ParsedArgs& a) {
  GenerateOptions o;
  o.model_dir = a.str("model"), o.prompt = a.str("prompt"), o.max_new_tokens = a.integer("max-tokens");
  o.temperature = a.real("temperature"), o.top_k = a.integer("top-k"), o.top_p = a.real("top-p");
  o.repetition_penalty = a.real("repetition-penalty"), o.seed = static_cast<uint64_t>(a.integer("seed"));
  o.threads = static_cast<int>(a.integer("threads"));
  std::fputs(o.prompt.c_str(), stdout);
  auto r = generate(o, [](const std::string& piece) {
    std::fputs(piece.c_str(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::fputs("\n", stdout);
  std::fflush(stdout);
  if (!r) return fail(r.status());
  std::fprintf(stderr, "prompt %lld tokens at %.0f tok/s, generated %lld tokens at %.1f tok/s, state %.2f MiB\n",
               static_cast<long long>(r->prompt_tokens), r->prefill_tokens_per_s,
               static_cast<long long>(r->new_tokens), r->decode_tokens_per_s, r->state_bytes / 1048576.0);
  return 0;
}

int run_bench_gemm(const ParsedArgs& a) {
  std::vector<int64_t> sizes;
  for (const char* s : {"256", "512", "1024", "2048"}) sizes.push_back(std::stoll(s));
  if (a.has("size")) sizes = {a.integer("size")};
  auto r = bench_gemm(sizes, static_cast<int>(a.integer("threads")), a.real("seconds"));
  if (!r) return fail(r.status());
  std::printf("%-9s %6s %6s %6s %8s %10s\n", "backend", "M", "N", "K", "threads", "GFLOP/s");
  for (const auto& row : *r)
    std::printf("%-9s %6lld %6lld %6lld %8d %10.1f\n", row.backend.c_str(), static_cast<long long>(row.M),
                static_cast<long long>(row.N), static_cast<long long>(row.K), row.threads, row.gflops);
  return 0;
}

int run_bench_kv(const ParsedArgs& a) {
  const int64_t context = a.integer("context");
  auto r = bench_kv(a.str("config"), context, a.has("kv-dtype") ? a.str("kv-dtype") : "", a.str("set"));
  if (!r) return fail(r.status());
  std::printf("%s: decoding memory per sequence at context %lld\n", a.str("config").c_str(),
              static_cast<long long>(context));
  std::printf("%5s  %-10s %-16s %12s %12s %16s\n", "layer", "mixer", "memory", "bytes/token", "fixed bytes",
              "bytes at context");
  size_t per_token = 0, fixed = 0, total = 0;
  for (const auto& row : *r) {
    std::printf("%5lld  %-10s %-16s %12zu %12zu %16zu\n", static_cast<long long>(row.layer), row.mixer.c_str(),
                row.memory.c_str(), row.bytes_per_token, row.fixed_bytes, row.bytes_at_context);
    per_token += row.bytes_per_token, fixed += row.fixed_bytes, total += row.bytes_at_context;
  }
  std::printf("%5s  %-10s %-16s %12zu %12zu %16zu  (%.2f MiB)\n", "total", "", "", per_token, fixed, total,
              total / 1048576.0);
  return 0;
}

const std::vector<Command>& bench_commands() {
  static const std::vector<Command> table = {
      {"bench gemm", "The BLAS backends' GEMM GFLOP/s.",
       {{"size", ArgKind::Int, "", "one square size instead of 256..2048"},
        {"threads", ArgKind::Int, "0", "worker threads (0: all cores)"},
        {"seconds", ArgKind::Float, "0.5", "time per measurement"}},
       run_bench_gemm},
      {"bench kv", "Decoding memory (KV cache / state) of a model config per layer: bytes per token and at --context.",
       {{"config", ArgKind::String, "", "model config JSON (no weights needed)", true},
        {"context", ArgKind::Int, "4096", "context length in tokens"},
        {"kv-dtype", ArgKind::String, "", "override the attention layers' kv_cache dtype: f32, bf16 or int8"},
        {"set", ArgKind::String, "", "edit the config first, as arena --set: key=value[,key=value...], dotted keys"}},
       run_bench_kv},
  };
  return table;
}

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"prepare-data", "Train a byte-level BPE tokenizer on a text file and write tokenized train/validation splits.",
       {{"text", ArgKind::String, "", "plain UTF-8 text file (or raw `bible` output with --format kjv)", true},
        {"format", ArgKind::String, "text", "text, or kjv: clean the Debian bible-kjv output first"},
        {"out", ArgKind::String, "", "output folder", true},
        {"vocab-size", ArgKind::Int, "4096", "tokenizer vocabulary size (256 bytes + merges)"}},
       run_prepare},
      {"train", "Train a model from a JSON config on prepared data; checkpoints go to --out.",
       {{"config", ArgKind::String, "", "model config JSON (with an optional \"train\" section)"},
        {"data", ArgKind::String, "", "folder written by prepare-data", true},
        {"out", ArgKind::String, "", "checkpoint folder", true},
        {"resume", ArgKind::Flag, "", "continue the run saved in --out (bit-exact)"},
        {"steps", ArgKind::Int, "0", "override train.steps (the length of the LR schedule)"},
        {"stop-at", ArgKind::Int, "0", "checkpoint and stop after this step (0: run to the end); --resume continues"},
        {"threads", ArgKind::Int, "0", "worker threads (0: all cores)"},
        {"time-budget", ArgKind::Float, "0", "stop after this many seconds of training (0: off)"},
        {"eval-every-seconds", ArgKind::Float, "0", "validate every this many training seconds (0: by steps)"},
        {"precision", ArgKind::String, "fp32", "matmul precision: fp32, or bf16 (bf16 operands, f32 accumulation and master weights)"},
        {"gemm", ArgKind::String, "", "GEMM backend: onednn or openblas (default onednn)"},
        {"report", ArgKind::String, "", "write a JSON summary (tokens/s, MFU, validation curve) here"},
        {"quiet", ArgKind::Flag, "", "no progress output"}},
       run_train},
      {"eval", "Print the validation bits per byte of a trained model.",
       {{"model", ArgKind::String, "", "checkpoint folder", true},
        {"data", ArgKind::String, "", "folder written by prepare-data", true},
        {"max-tokens", ArgKind::Int, "0", "evaluate at most this many tokens (0: all)"},
        {"threads", ArgKind::Int, "0", "worker threads (0: all cores)"}},
       run_eval},
      {"generate", "Stream a continuation of a prompt from a trained model.",
       {{"model", ArgKind::String, "", "checkpoint folder", true},
        {"prompt", ArgKind::String, "", "text to continue", true},
        {"max-tokens", ArgKind::Int, "200", "tokens to generate"},
        {"temperature", ArgKind::Float, "0.8", "sampling temperature (0: greedy)"},
        {"top-k", ArgKind::Int, "40", "keep the k most likely tokens (0: off)"},
        {"top-p", ArgKind::Float, "0.95", "nucleus sampling mass (1: off)"},
        {"repetition-penalty", ArgKind::Float, "1.1", "penalty on recently seen tokens (1: off)"},
        {"seed", ArgKind::Int, "0", "sampling seed"},
        {"threads", ArgKind::Int, "0", "worker threads (0: all cores)"}},
       run_generate},
      {"bench", "Benchmarks: `speedlm bench gemm` (GEMM GFLOP/s), `speedlm bench kv` (decoding memory).", {}, nullptr},
      {"arena", "Train model configs under the same budget on one task and compare size, speed, memory and quality.",
       {{"configs", ArgKind::String, "", "comma-separated model config JSONs", true},
        {"task", ArgKind::String, "lm", "mqar, copy, induction, or lm (the corpus in --data)"},
        {"data", ArgKind::String, "", "folder written by prepare-data (task lm)"},
        {"out", ArgKind::String, "", "output folder: arena.md, arena.csv, speed.csv, loss.csv, plots", true},
        {"budget", ArgKind::String, "1m", "per run: minutes (2, 1.5m, 2min), seconds (90s) or tokens (300ktok, 2Mtok)"},
        {"seq-lens", ArgKind::String, "", "comma-separated sequence lengths, one run each (default: the task's)"},
        {"d-models", ArgKind::String, "", "comma-separated d_model values, one run each (default: the config's)"},
        {"set", ArgKind::String, "", "config edits for every run: key=value,... (dotted paths, JSON values)"},
        {"batch", ArgKind::Int, "0", "sequences per batch (0: 32 for synthetic tasks, the config's for lm)"},
        {"lr", ArgKind::Float, "0", "peak learning rate (0: the config's train.lr)"},
        {"vocab", ArgKind::Int, "0", "synthetic task vocabulary (0: mqar 8192, copy and induction 16)"},
        {"kv-pairs", ArgKind::Int, "0", "mqar key-value pairs (0: seq_len / 16)"},
        {"contexts", ArgKind::String, "512,1024,2048,4096,8192", "context lengths for prefill, decode and memory"},
        {"decode-tokens", ArgKind::Int, "32", "timed decode steps per context"},
        {"skip-speed", ArgKind::Flag, "", "only train and score (no prefill/decode/memory measurements)"},
        {"test-examples", ArgKind::Int, "1000", "synthetic tasks: fixed test examples"},
        {"stop-at", ArgKind::Float, "0", "synthetic tasks: stop a run when its validation accuracy reaches this (0: never)"},
        {"eval-tokens", ArgKind::Int, "65536", "lm: validation tokens for bits per byte"},
        {"prompt", ArgKind::String, "The", "lm: the best model continues this prompt"},
        {"sample-tokens", ArgKind::Int, "120", "lm: tokens in that sample (0: none)"},
        {"threads", ArgKind::Int, "0", "worker threads (0: all cores)"},
        {"precision", ArgKind::String, "fp32", "training matmul precision: fp32 or bf16"},
        {"seed", ArgKind::Int, "1234", "seed of weights, data and test sets"},
        {"no-plots", ArgKind::Flag, "", "skip the PNG plots"}},
       run_arena_cmd},
  };
  return table;
}

void print_usage() {
  std::printf("speedlm: efficient LLM architectures on the CPU\n\nusage: speedlm <command> [flags]\n\ncommands:\n");
  for (const Command& c : commands()) std::printf("  %-13s %s\n", c.name.c_str(), c.summary.c_str());
  std::printf("\n`speedlm <command> --help` lists a command's flags.\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage();
    return args.empty() ? 1 : 0;
  }
  for (const Command& c : commands()) {
    if (c.name != args[0]) continue;
    std::vector<std::string> rest(args.begin() + 1, args.end());
    const Command* cmd = &c;
    if (c.name == "bench") {
      cmd = nullptr;
      for (const Command& b : bench_commands())
        if (!rest.empty() && "bench " + rest[0] == b.name) cmd = &b;
      if (!cmd) {
        if (!rest.empty() && (rest[0] == "--help" || rest[0] == "-h")) {
          for (const Command& b : bench_commands())
            std::printf("%s\n", help_text(b).c_str());
          return 0;
        }
        return fail(Status::error("bench", "expected a benchmark name: speedlm bench gemm | kv"));
      }
      rest.erase(rest.begin());
    }
    for (const std::string& r : rest)
      if (r == "--help" || r == "-h") {
        std::fputs(help_text(*cmd).c_str(), stdout);
        return 0;
      }
    auto parsed = parse_args(*cmd, rest);
    if (!parsed) return fail(parsed.status());
    return cmd->run(*parsed);
  }
  return fail(Status::errorf("speedlm", "unknown command '{}' (see speedlm --help)", args[0]));
}

}  // namespace speedlm::cli

int main(int argc, char** argv) { return speedlm::cli::main(argc, argv); }
