// speedlm::data: the training loop behind `speedlm train`.
#include <chrono>
#include <cmath>
#include <filesystem>

#include "autograd/functions.h"
#include "core/log.h"
#include "core/parallel.h"
#include "ops/linalg/gemm/gemm.h"
#include "speedlm/speedlm.h"
#include "train/batcher.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/evaluate.h"
#include "train/schedule.h"
#include "train/train_config.h"
#include "train/train_step.h"

namespace speedlm {

// GEMM GFLOP/s at 1024^3 on `threads` threads, f32 or bf16 operands (arena/gemm_bench.cpp).
double measure_gemm_gflops(int threads, bool bf16);

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string format_eta(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  int64_t t = static_cast<int64_t>(s);
  return t >= 3600 ? fmt::format("{}h{:02}m", t / 3600, t / 60 % 60) : fmt::format("{}m{:02}s", t / 60, t % 60);
}

struct Setup {
  ModelConfig mc;
  TrainConfig tc;
  std::unique_ptr<LanguageModel> model;
};

Result<Setup> setup_model(const TrainOptions& opt, const data::Dataset& data) {
  Setup s;
  if (opt.resume) {
    auto loaded = load_model_dir(opt.out_dir);
    if (!loaded) return Status::errorf("train", "--resume: {}", loaded.status().message());
    if (loaded->tokenizer.to_json() != data.tokenizer.to_json())
      return Status::errorf("train", "--resume: {} was tokenized with another tokenizer than the run in {}",
                            opt.data_dir, opt.out_dir);
    s.mc = loaded->model_config, s.tc = loaded->train_config, s.model = std::move(loaded->model);
  } else {
    auto j = read_json_file(opt.config_path);
    SPEEDLM_TRY(j);
    auto mc = ModelConfig::from_json(*j);
    SPEEDLM_TRY(mc);
    auto tc = TrainConfig::from_json(j->contains("train") ? (*j)["train"] : nlohmann::json());
    SPEEDLM_TRY(tc);
    s.mc = *mc, s.tc = *tc;
    s.model = std::make_unique<LanguageModel>(s.mc);
    s.model->init(s.tc.seed);
  }
  if (opt.steps > 0) s.tc.steps = opt.steps;
  if (data.tokenizer.vocab_size() > s.mc.vocab_size)
    return Status::errorf("train", "vocab_size = {} in the config, but the data's tokenizer has {} tokens",
                          s.mc.vocab_size, data.tokenizer.vocab_size());
  if (static_cast<int64_t>(data.train.size()) <= s.tc.seq_len + 1)
    return Status::errorf("train", "train.seq_len = {}: the training split has only {} tokens", s.tc.seq_len,
                          data.train.size());
  return s;
}

// " | aux 0.0123 | moe max/mean 1.42 (layer 3), dropped 0.0%" over the MoE layers; "" without any.
std::string moe_progress(const std::vector<std::pair<int64_t, nn::MoeLoad>>& loads, const StepResult& step) {
  if (loads.empty()) return "";
  double worst = 0.0;
  int64_t worst_layer = 0, dropped = 0, slots = 0;
  for (const auto& [layer, load] : loads) {
    if (load.max_over_mean() > worst) worst = load.max_over_mean(), worst_layer = layer;
    dropped += load.dropped, slots += load.slots();
  }
  return fmt::format("{} | moe max/mean {:.2f} (layer {}), dropped {:.1f}%",
                     step.has_aux ? fmt::format(" | aux {:.4f}", step.aux_loss) : "", worst, worst_layer,
                     slots > 0 ? 100.0 * static_cast<double>(dropped) / static_cast<double>(slots) : 0.0);
}

}  // namespace

Result<TrainReport> train(const TrainOptions& opt) {
  if (opt.threads > 0) set_num_threads(opt.threads);
  if (!opt.gemm_backend.empty()) {
    auto b = ops::parse_gemm_backend(opt.gemm_backend);
    SPEEDLM_TRY(b);
    ops::set_gemm_backend(*b);
  }
  if (opt.precision != "fp32" && opt.precision != "bf16")
    return Status::errorf("train", "--precision = '{}': expected fp32 or bf16", opt.precision);
  ag::set_matmul_precision(opt.precision == "bf16" ? ag::MatmulPrecision::Bf16 : ag::MatmulPrecision::F32);
  if (opt.out_dir.empty()) return Status::error("train", "--out is empty");
  auto ds = data::load_dataset(opt.data_dir);
  SPEEDLM_TRY(ds);
  auto setup = setup_model(opt, *ds);
  SPEEDLM_TRY(setup);
  LanguageModel& model = *setup->model;
  const TrainConfig& tc = setup->tc;

  AdamW adam(model.params(), AdamWParams{tc.beta1, tc.beta2, tc.eps, tc.weight_decay});
  TrainerState state;
  if (opt.resume) SPEEDLM_TRY(load_training_state(opt.out_dir, model, adam, state));
  auto made = data::Batcher::create(ds->train, tc.batch_size, tc.seq_len, tc.seed);
  SPEEDLM_TRY(made);
  data::Batcher& batcher = *made;
  batcher.set_step(static_cast<uint64_t>(state.batcher_step));

  TrainReport report;
  report.params = model.num_params();
  report.gemm_gflops = measure_gemm_gflops(num_threads(), opt.precision == "bf16");
  // MoE layers: a token runs through k of E experts.
  const double flops_per_token = 6.0 * static_cast<double>(model.active_params());
  const int64_t tokens_per_step = tc.batch_size * tc.seq_len;
  if (!opt.quiet)
    log_info("train: {} parameters, {} threads, {} gemm {} at {:.0f} GFLOP/s, steps {} -> {}, {} tokens/step",
             report.params, num_threads(), opt.precision, ops::gemm_backend_name(ops::gemm_backend()), report.gemm_gflops,
             state.step, tc.steps, tokens_per_step);

  auto run_eval = [&](double train_s) {
    EvalResult r = evaluate_bpb(model, ds->val, ds->meta.val_bytes, tc.seq_len, tc.batch_size, tc.eval_tokens);
    report.curve.push_back({train_s, r.bpb});
    report.final_val_bpb = r.bpb;
    if (!opt.quiet) {
      log_info("eval step {}: val loss {:.4f} nats/token, {:.4f} bits/byte ({} tokens, {:.0f} s of training)",
               state.step, r.loss, r.bpb, r.tokens, train_s);
      for (const auto& [layer, load] : r.moe_load) log_info("eval moe {}", format_moe_load(layer, load));
    }
  };
  auto save = [&]() -> Status {
    state.batcher_step = static_cast<int64_t>(batcher.step());
    return save_checkpoint(opt.out_dir, model, tc, ds->tokenizer, &adam, state);
  };

  double train_s = 0.0, last_eval_s = 0.0;
  int64_t timed_tokens = 0;
  double timed_s = 0.0;
  Clock::time_point window_t0 = Clock::now();
  int64_t window_tokens = 0;
  const int64_t first_step = state.step;
  while (state.step < tc.steps) {
    Clock::time_point t0 = Clock::now();
    double lr = lr_at(state.step, tc.lr, tc.schedule, tc.warmup_steps, tc.steps);
    StepResult sr = train_step(model, adam, batcher.next(), lr, tc.grad_clip);
    float loss_v = sr.loss;
    double norm = sr.grad_norm;
    if (!std::isfinite(loss_v)) return Status::errorf("train", "step {}: loss is {}; stopping", state.step, loss_v);
    state.losses.push_back(loss_v);
    ++state.step;
    double dt = seconds_since(t0);
    train_s += dt;
    // The first steps of a run warm caches and create GEMM primitives: keep them out of tokens/s.
    if (state.step - first_step > 2) timed_s += dt, timed_tokens += tokens_per_step;
    window_tokens += tokens_per_step;

    bool last = state.step == tc.steps || state.step == opt.stop_at ||
                (opt.time_budget_s > 0 && train_s >= opt.time_budget_s);
    if (!opt.quiet && (state.step % tc.log_every == 0 || last)) {
      double tps = window_tokens / seconds_since(window_t0);
      double mfu = flops_per_token * tps / (report.gemm_gflops * 1e9);
      double eta = opt.time_budget_s > 0 ? opt.time_budget_s - train_s
                                         : (tc.steps - state.step) * tokens_per_step / tps;
      log_info("step {:>6}/{} | loss {:.4f} | lr {:.2e} | grad norm {:.3f} | {:.0f} tok/s | MFU {:.0f}% | ETA {}{}",
               state.step, tc.steps, loss_v, lr, norm, tps, 100.0 * mfu, format_eta(eta),
               moe_progress(model.take_moe_load(), sr));
      window_t0 = Clock::now(), window_tokens = 0;
    }
    bool eval_due = opt.eval_every_s > 0 ? train_s - last_eval_s >= opt.eval_every_s
                                         : tc.eval_every > 0 && state.step % tc.eval_every == 0;
    if (eval_due && !last) {
      run_eval(train_s);
      last_eval_s = train_s;
      window_t0 = Clock::now(), window_tokens = 0;
    }
    if (tc.checkpoint_every > 0 && state.step % tc.checkpoint_every == 0 && !last) SPEEDLM_TRY(save());
    if (last) break;
  }
  run_eval(train_s);
  SPEEDLM_TRY(save());
  report.steps = state.step;
  report.train_seconds = train_s;
  report.tokens_per_s = timed_s > 0 ? timed_tokens / timed_s : 0.0;
  report.mfu = flops_per_token * report.tokens_per_s / (report.gemm_gflops * 1e9);
  report.losses = state.losses;
  if (!opt.quiet)
    log_info("done: {} steps, {:.0f} tokens/s, MFU {:.1f}%, val {:.4f} bits/byte, checkpoint in {}", report.steps,
             report.tokens_per_s, 100.0 * report.mfu, report.final_val_bpb, opt.out_dir);
  return report;
}

}  // namespace speedlm
