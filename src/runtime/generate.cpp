// speedlm::generate: prompt -> streamed continuation (behind `speedlm generate`).
#include <chrono>

#include "core/parallel.h"
#include "speedlm/speedlm.h"
#include "runtime/session.h"
#include "train/checkpoint.h"

namespace speedlm {

namespace {

// Length of the longest prefix of s that does not end inside a UTF-8 sequence.
size_t complete_utf8_prefix(const std::string& s) {
  size_t n = s.size(), i = n;
  for (int back = 0; back < 4 && i > 0; ++back) {
    unsigned char c = static_cast<unsigned char>(s[i - 1]);
    if ((c & 0xC0) != 0x80) {  // a lead or ASCII byte at i - 1
      size_t need = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
      return n - (i - 1) >= need ? n : i - 1;
    }
    --i;
  }
  return n;
}

}  // namespace

Result<GenerateReport> generate(const GenerateOptions& opt, const std::function<bool(const std::string&)>& on_text) {
  if (opt.threads > 0) set_num_threads(opt.threads);
  SamplerParams sp{opt.temperature, opt.top_k, opt.top_p, opt.repetition_penalty, 64, opt.seed};
  SPEEDLM_TRY(validate_sampler(sp));
  if (opt.max_new_tokens < 0) return Status::errorf("generate", "--max-tokens = {}: must be >= 0", opt.max_new_tokens);
  auto loaded = load_model_dir(opt.model_dir);
  SPEEDLM_TRY(loaded);
  LanguageModel& model = *loaded->model;
  std::vector<int32_t> prompt = loaded->tokenizer.encode(opt.prompt);
  if (prompt.empty()) return Status::error("generate", "--prompt is empty: give at least one character");

  using Clock = std::chrono::steady_clock;
  GenerateReport report;
  report.prompt_tokens = static_cast<int64_t>(prompt.size());
  Session session(model);
  Sampler sampler(sp);
  Clock::time_point t0 = Clock::now();
  Tensor logits = session.prefill(prompt);
  report.prefill_tokens_per_s = prompt.size() / std::chrono::duration<double>(Clock::now() - t0).count();
  std::string pending;
  t0 = Clock::now();
  const int64_t V = loaded->tokenizer.vocab_size();  // never sample ids the tokenizer cannot decode
  for (int64_t i = 0; i < opt.max_new_tokens; ++i) {
    int32_t next = sampler.sample(logits.f32(), V, session.history());
    ++report.new_tokens;
    pending += loaded->tokenizer.token_bytes(next);
    size_t n = complete_utf8_prefix(pending);
    if (n > 0) {
      std::string piece = pending.substr(0, n);
      pending.erase(0, n);
      report.text += piece;
      if (on_text && !on_text(piece)) break;
    }
    if (i + 1 < opt.max_new_tokens) logits = session.decode(next);
  }
  if (!pending.empty()) {
    report.text += pending;
    if (on_text) on_text(pending);
  }
  double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  report.decode_tokens_per_s = dt > 0 ? report.new_tokens / dt : 0.0;
  report.state_bytes = session.state().bytes();
  return report;
}

}  // namespace speedlm
