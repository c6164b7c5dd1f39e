// speedlm::run_arena: every config trained under the same budget on one task, then scored
// and measured (behind `speedlm arena`).
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "arena/budget.h"
#include "arena/config_override.h"
#include "arena/report.h"
#include "arena/speed.h"
#include "arena/tasks/copy_task.h"
#include "arena/tasks/induction.h"
#include "arena/tasks/mqar.h"
#include "autograd/functions.h"
#include "core/parallel.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "speedlm/speedlm.h"
#include "train/dataset.h"
#include "train/evaluate.h"
#include "train/train_config.h"
#include "train/train_step.h"

namespace speedlm {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

constexpr int64_t kTaskBatch = 32;  // synthetic tasks' default batch

// Defaults per task: MQAR as Zoology's Figure 2 grid (vocab 8192, T = 64), copying and
// induction as the Mamba paper (vocab 16) at T = 256.
int64_t default_seq_len(const std::string& task) { return task == "mqar" ? 64 : 256; }

Result<std::unique_ptr<arena::Task>> make_task(const ArenaOptions& opt, int64_t T, int64_t batch) {
  if (opt.task == "mqar") {
    arena::MqarParams p;
    p.seq_len = T;
    if (opt.vocab_size > 0) p.vocab_size = opt.vocab_size;
    p.num_kv_pairs = opt.kv_pairs > 0 ? opt.kv_pairs : std::max<int64_t>(1, T / 16);
    SPEEDLM_TRY(p.check());
    return std::unique_ptr<arena::Task>(std::make_unique<arena::MqarTask>(p, batch, opt.seed));
  }
  if (opt.task == "copy") {
    arena::CopyParams p;
    p.seq_len = T;
    if (opt.vocab_size > 0) p.vocab_size = opt.vocab_size;
    SPEEDLM_TRY(p.check());
    return std::unique_ptr<arena::Task>(std::make_unique<arena::CopyTask>(p, batch, opt.seed));
  }
  arena::InductionParams p;
  p.seq_len = T;
  if (opt.vocab_size > 0) p.vocab_size = opt.vocab_size;
  SPEEDLM_TRY(p.check());
  return std::unique_ptr<arena::Task>(std::make_unique<arena::InductionTask>(p, batch, opt.seed));
}

struct Trained {
  bool stopped_early = false;  // the run's validation accuracy reached --stop-at
  int64_t steps = 0, tokens = 0;
  double seconds = 0.0, tokens_per_s = 0.0, final_loss = 0.0;
  std::vector<std::pair<double, double>> curve;
};

using Progress = std::function<void(const std::string&)>;
// Asked at every 5% of the budget whether the run has learned enough to stop (null: never).
using Solved = std::function<bool()>;
constexpr double kCheckEvery = 0.05;
constexpr int64_t kValidationExamples = 256;

Result<Trained> train_run(LanguageModel& model, data::BatchSource& source, const arena::Budget& budget,
                          const TrainConfig& tc, double lr, int64_t tokens_per_step, const std::string& label,
                          const Progress& progress, const Solved& solved) {
  AdamW adam(model.params(), AdamWParams{tc.beta1, tc.beta2, tc.eps, tc.weight_decay});
  Trained t;
  double timed_s = 0.0;
  int64_t timed_tokens = 0;
  Clock::time_point last_log = Clock::now();
  double next_check = kCheckEvery;
  for (double p = 0.0; p < 1.0; p = budget.progress(t.seconds, t.tokens)) {
    if (solved && p >= next_check) {
      next_check += kCheckEvery;
      if (solved()) {
        t.stopped_early = true;
        break;
      }
    }
    Clock::time_point t0 = Clock::now();
    StepResult r = train_step(model, adam, source.next(), arena::budget_lr(p, lr, tc.schedule), tc.grad_clip);
    double dt = since(t0);
    if (!std::isfinite(r.loss)) return Status::errorf("arena", "{}: step {}: loss is {}; stopping", label, t.steps, r.loss);
    ++t.steps, t.seconds += dt, t.tokens += tokens_per_step;
    // The first steps warm caches and create GEMM primitives: keep them out of tokens/s.
    if (t.steps > 2) timed_s += dt, timed_tokens += tokens_per_step;
    t.curve.push_back({t.seconds, r.loss});
    t.final_loss = r.loss;
    if (since(last_log) >= 5.0) {
      progress(fmt::format("{} {:.0f}% | step {} | loss {:.4f} | {:.0f} tok/s", label, 100.0 * std::min(1.0, p),
                           t.steps, r.loss, timed_s > 0 ? timed_tokens / timed_s : 0.0));
      last_log = Clock::now();
    }
  }
  t.tokens_per_s = timed_s > 0 ? timed_tokens / timed_s : t.tokens / t.seconds;
  return t;
}

double accuracy(LanguageModel& model, const std::vector<data::Batch>& examples) {
  ag::NoGradGuard guard;
  arena::AccuracySum acc;
  for (const data::Batch& b : examples) {
    Tensor logits = model.forward(b.inputs).value();
    arena::add_accuracy(logits.f32(), logits.dim(1), b, acc);
  }
  return acc.mean();
}

std::string stem(const std::string& path) { return std::filesystem::path(path).stem().string(); }

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a;
  f >> a;
  return a.empty() ? "?" : a;
}

std::string notes(const ArenaOptions& opt) {
  std::string n = "## How this was measured\n\n";
  n += fmt::format("- Threads: {}; {} training matmuls; load average at the start {} (a shared machine makes "
                   "every figure noisy).\n", num_threads(), opt.precision, load_average());
  n += fmt::format("- Training: each run trains for the budget ({}) from seed {} with AdamW (betas, weight decay "
                   "and clipping from the config's train section), its peak learning rate with 5% warmup, then the "
                   "decay of the config's train.schedule (cosine by default; wsd: the peak held until the last "
                   "train.decay_fraction of the budget, then linear) down to train.min_lr_ratio, batches of {} "
                   "sequences. Train tok/s leaves out the first 2 steps.\n",
                   opt.budget, opt.seed,
                   opt.batch_size > 0 ? fmt::format("{}", opt.batch_size)
                   : opt.task == "lm" ? std::string("the config's train.batch_size") : fmt::format("{}", kTaskBatch));
  if (!opt.skip_speed)
    n += fmt::format("- Prefill tok/s at L: one forward pass over L random tokens, batch 1, on a fresh state (not "
                     "chunked). Decode tok/s at L: {} single-token steps after that L-token context, batch 1, after "
                     "one untimed step. Memory at L: the model's decoding state (ModelState::bytes(), allocated "
                     "capacity; KV caches grow by doubling) right after the L-token prefill. Contexts measured: "
                     "see speed.csv.\n", opt.decode_tokens);
  if (opt.task == "lm")
    n += fmt::format("- val_bpb: validation bits per byte over the first {} tokens of the validation split.\n",
                     opt.eval_tokens);
  else
    n += fmt::format("- accuracy: over {} fixed test examples, the per-example fraction of scored positions whose "
                     "argmax is the target, averaged over examples (Zoology's compute_metrics).\n", opt.test_examples);
  if (opt.task != "lm" && opt.stop_at > 0)
    n += fmt::format("- Early stop (as Zoology's): at every 5% of the budget a run scores {} validation examples "
                     "(streams disjoint from training and test); at accuracy >= {} it stops, so its steps and "
                     "tokens in arena.csv are fewer than the budget's.\n", kValidationExamples, opt.stop_at);
  return n;
}

Status check_options(const ArenaOptions& opt) {
  if (opt.config_paths.empty()) return Status::error("arena", "--configs is empty: give at least one config JSON");
  if (opt.task != "mqar" && opt.task != "copy" && opt.task != "induction" && opt.task != "lm")
    return Status::errorf("arena", "--task = '{}': expected mqar, copy, induction or lm", opt.task);
  if (opt.task == "lm" && opt.data_dir.empty()) return Status::error("arena", "--task lm needs --data");
  if (opt.out_dir.empty()) return Status::error("arena", "--out is empty");
  if (!(opt.stop_at >= 0.0 && opt.stop_at <= 1.0))
    return Status::errorf("arena", "--stop-at = {}: must be an accuracy in [0, 1] (0: never stop early)", opt.stop_at);
  if (opt.stop_at > 0 && opt.task == "lm")
    return Status::error("arena", "--stop-at applies to the synthetic tasks (accuracy), not to --task lm");
  if (opt.precision != "fp32" && opt.precision != "bf16")
    return Status::errorf("arena", "--precision = '{}': expected fp32 or bf16", opt.precision);
  for (int64_t v : opt.seq_lens)
    if (v < 2) return Status::errorf("arena", "--seq-lens: {} is not a sequence length (>= 2)", v);
  for (int64_t v : opt.d_models)
    if (v < 1) return Status::errorf("arena", "--d-models: {} is not a width (>= 1)", v);
  for (int64_t v : opt.contexts)
    if (v < 1) return Status::errorf("arena", "--contexts: {} is not a context length (>= 1)", v);
  if (opt.batch_size < 0) return Status::errorf("arena", "--batch = {}: must be >= 0", opt.batch_size);
  if (opt.decode_tokens < 1) return Status::errorf("arena", "--decode-tokens = {}: must be >= 1", opt.decode_tokens);
  if (opt.test_examples < 1) return Status::errorf("arena", "--test-examples = {}: must be >= 1", opt.test_examples);
  if (opt.lr < 0) return Status::errorf("arena", "--lr = {}: must be >= 0", opt.lr);
  return Status::ok();
}

}  // namespace

Result<ArenaReport> run_arena(const ArenaOptions& opt, const Progress& progress) {
  SPEEDLM_TRY(check_options(opt));
  auto budget = arena::parse_budget(opt.budget);
  SPEEDLM_TRY(budget);
  std::error_code ec;
  std::filesystem::create_directories(opt.out_dir, ec);
  if (ec) return Status::errorf("arena", "--out = '{}': cannot create the folder: {}", opt.out_dir, ec.message());
  if (opt.threads > 0) set_num_threads(opt.threads);
  ag::set_matmul_precision(opt.precision == "bf16" ? ag::MatmulPrecision::Bf16 : ag::MatmulPrecision::F32);
  std::unique_ptr<data::Dataset> ds;
  if (opt.task == "lm") {
    auto loaded = data::load_dataset(opt.data_dir);
    SPEEDLM_TRY(loaded);
    ds = std::make_unique<data::Dataset>(std::move(*loaded));
  }
  // Every config is read and validated before any training starts.
  std::vector<nlohmann::json> configs;
  for (const std::string& path : opt.config_paths) {
    auto j = read_json_file(path);
    SPEEDLM_TRY(j);
    Status s = arena::apply_overrides(*j, opt.overrides);
    if (!s) return Status::errorf("arena", "{}: {}", path, s.message());
    configs.push_back(*j);
  }
  const std::vector<int64_t> seq_lens = opt.seq_lens.empty() ? std::vector<int64_t>{0} : opt.seq_lens;
  const std::vector<int64_t> widths = opt.d_models.empty() ? std::vector<int64_t>{0} : opt.d_models;
  const size_t total = configs.size() * seq_lens.size() * widths.size();

  ArenaReport report;
  std::unique_ptr<LanguageModel> best_model;
  double best_metric = 0.0;
  size_t run = 0;
  for (size_t c = 0; c < configs.size(); ++c)
    for (int64_t T0 : seq_lens)
      for (int64_t width : widths) {
        ++run;
        nlohmann::json j = configs[c];
        if (width > 0) j["d_model"] = width;
        TrainConfig tc;
        {
          auto parsed = TrainConfig::from_json(j.contains("train") ? j["train"] : nlohmann::json());
          if (!parsed) return Status::errorf("arena", "{}: {}", opt.config_paths[c], parsed.status().message());
          tc = *parsed;
        }
        const int64_t T = T0 > 0 ? T0 : opt.task == "lm" ? tc.seq_len : default_seq_len(opt.task);
        const int64_t batch = opt.batch_size > 0 ? opt.batch_size : opt.task == "lm" ? tc.batch_size : kTaskBatch;
        std::unique_ptr<arena::Task> task;
        std::unique_ptr<data::Batcher> corpus;
        if (ds) {
          auto b = data::Batcher::create(ds->train, batch, T, opt.seed);
          SPEEDLM_TRY(b);
          corpus = std::make_unique<data::Batcher>(*b);
          j["vocab_size"] = ds->tokenizer.vocab_size();
        } else {
          auto t = make_task(opt, T, batch);
          SPEEDLM_TRY(t);
          task = std::move(*t);
          j["vocab_size"] = task->vocab_size();
        }
        auto mc = ModelConfig::from_json(j);
        if (!mc) return Status::errorf("arena", "{}: {}", opt.config_paths[c], mc.status().message());

        ArenaRow row;
        row.name = stem(opt.config_paths[c]);
        row.config = opt.config_paths[c];
        row.seq_len = T, row.d_model = mc->d_model;
        auto model = std::make_unique<LanguageModel>(*mc);
        model->init(opt.seed);
        row.params = model->num_params();
        const std::string label = fmt::format("[{}/{}] {}", run, total, row.name);
        progress(fmt::format("{} (T={}, d_model={}): {} parameters, batch {} x {}, budget {}", label, T, row.d_model,
                             row.params, batch, T, opt.budget));
        data::BatchSource& source = ds ? static_cast<data::BatchSource&>(*corpus) : *task;
        Solved solved;
        if (task && opt.stop_at > 0)
          solved = [&, val = task->validation_set(kValidationExamples)] {
            const double acc = accuracy(*model, val);
            progress(fmt::format("{} validation accuracy {:.4f}", label, acc));
            return acc >= opt.stop_at;
          };
        auto trained =
            train_run(*model, source, *budget, tc, opt.lr > 0 ? opt.lr : tc.lr, batch * T, label, progress, solved);
        SPEEDLM_TRY(trained);
        row.steps = trained->steps, row.train_tokens = trained->tokens, row.train_seconds = trained->seconds;
        row.train_tokens_per_s = trained->tokens_per_s, row.final_loss = trained->final_loss;
        row.curve = std::move(trained->curve);
        if (ds) {
          row.metric_name = "val_bpb";
          row.metric = evaluate_bpb(*model, ds->val, ds->meta.val_bytes, T, batch, opt.eval_tokens).bpb;
        } else {
          row.metric_name = "accuracy";
          row.metric = accuracy(*model, task->test_set(opt.test_examples));
        }
        progress(fmt::format("{}: {} {:.4f} after {} steps ({:.0f} s, {:.0f} train tok/s){}", label, row.metric_name,
                             row.metric, row.steps, row.train_seconds, row.train_tokens_per_s,
                             trained->stopped_early ? ", stopped early" : ""));
        if (!opt.skip_speed) {
          row.speed = arena::measure_speed(*model, opt.contexts, opt.decode_tokens, opt.seed);
          const ArenaSpeed& s = row.speed.back();
          progress(fmt::format("{}: at {} tokens: prefill {:.0f} tok/s, decode {:.1f} tok/s, memory {:.2f} MiB", label,
                               s.context, s.prefill_tokens_per_s, s.decode_tokens_per_s, s.state_bytes / 1048576.0));
        }
        const bool better = ds ? row.metric < best_metric : row.metric > best_metric;
        if (report.best.empty() || better) {
          report.best = row.name, best_metric = row.metric;
          if (ds) best_model = std::move(model);
        }
        report.rows.push_back(std::move(row));
        // Reports after every run, so an interrupted arena keeps what it measured.
        const std::string md = arena::markdown_report(opt, report.rows, notes(opt));
        SPEEDLM_TRY(arena::write_reports(opt.out_dir, report.rows, md));
      }

  if (best_model && opt.sample_tokens > 0) {
    Session session(*best_model);
    Sampler sampler(SamplerParams{0.8, 40, 0.95, 1.1, 64, opt.seed});
    std::vector<int32_t> prompt = ds->tokenizer.encode(opt.prompt);
    if (prompt.empty()) return Status::error("arena", "--prompt is empty: give at least one character");
    Tensor logits = session.prefill(prompt);
    std::vector<int32_t> generated;
    for (int64_t i = 0; i < opt.sample_tokens; ++i) {
      int32_t next = sampler.sample(logits.f32(), ds->tokenizer.vocab_size(), session.history());
      generated.push_back(next);
      logits = session.decode(next);
    }
    auto text = ds->tokenizer.decode(generated);
    SPEEDLM_TRY(text);
    report.sample = opt.prompt + *text;
  }
  report.table = arena::markdown_report(opt, report.rows, notes(opt));
  SPEEDLM_TRY(arena::write_reports(opt.out_dir, report.rows, report.table));
  return report;
}

}  // namespace speedlm
