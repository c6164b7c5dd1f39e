#include "arena/report.h"

#include <filesystem>
#include <map>
#include <set>

#include "io/atomic_file.h"

namespace speedlm::arena {

namespace {

std::string si(double v) {
  if (v >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}

std::string mib(size_t bytes) { return fmt::format("{:.2f} MiB", static_cast<double>(bytes) / 1048576.0); }

// The measured context nearest to `want` (the table's 1k and 8k columns).
const ArenaSpeed* nearest(const std::vector<ArenaSpeed>& speed, int64_t want) {
  const ArenaSpeed* best = nullptr;
  for (const ArenaSpeed& s : speed)
    if (!best || std::llabs(s.context - want) < std::llabs(best->context - want)) best = &s;
  return best;
}

std::string ctx_name(int64_t L) { return L % 1024 == 0 ? fmt::format("{}k", L / 1024) : fmt::format("{}", L); }

std::string metric_cell(const ArenaRow& r) {
  return r.metric_name == "accuracy" ? fmt::format("{:.3f}", r.metric) : fmt::format("{:.4f}", r.metric);
}

}  // namespace

std::string markdown_report(const ArenaOptions& opt, const std::vector<ArenaRow>& rows, const std::string& notes) {
  if (rows.empty()) return "";
  std::string md = fmt::format("# Arena: task {}, budget {} per run\n\n", opt.task, opt.budget);
  const bool speed = !rows[0].speed.empty();
  int64_t lo = 0, hi = 0;
  if (speed) lo = nearest(rows[0].speed, 1024)->context, hi = nearest(rows[0].speed, 8192)->context;
  md += "| model | T | d_model | params | steps | train tok/s | ";
  if (speed)
    md += fmt::format("prefill tok/s @{0} | prefill tok/s @{1} | decode tok/s @{0} | decode tok/s @{1} | memory @{1} | ",
                      ctx_name(lo), ctx_name(hi));
  md += fmt::format("{} |\n|---|---|---|---|---|---|", rows[0].metric_name);
  md += speed ? "---|---|---|---|---|---|\n" : "---|\n";
  for (const ArenaRow& r : rows) {
    md += fmt::format("| {} | {} | {} | {} | {} | {} | ", r.name, r.seq_len, r.d_model, si(r.params), r.steps,
                      si(r.train_tokens_per_s));
    if (speed) {
      const ArenaSpeed *a = nearest(r.speed, lo), *b = nearest(r.speed, hi);
      md += fmt::format("{} | {} | {} | {} | {} | ", si(a->prefill_tokens_per_s), si(b->prefill_tokens_per_s),
                        si(a->decode_tokens_per_s), si(b->decode_tokens_per_s), mib(b->state_bytes));
    }
    md += metric_cell(r) + " |\n";
  }
  // A grid (--seq-lens or --d-models with several values): the metric of each
  // (model, d_model) across sequence lengths.
  std::set<int64_t> lens;
  for (const ArenaRow& r : rows) lens.insert(r.seq_len);
  if (opt.seq_lens.size() > 1 || opt.d_models.size() > 1) {
    md += fmt::format("\n## {} grid\n\n| model | d_model |", rows[0].metric_name);
    for (int64_t T : lens) md += fmt::format(" T={} |", T);
    md += "\n|---|---|";
    for (size_t i = 0; i < lens.size(); ++i) md += "---|";
    md += "\n";
    std::map<std::pair<std::string, int64_t>, std::map<int64_t, std::string>> grid;
    std::vector<std::pair<std::string, int64_t>> order;
    for (const ArenaRow& r : rows) {
      auto key = std::make_pair(r.name, r.d_model);
      if (!grid.count(key)) order.push_back(key);
      grid[key][r.seq_len] = metric_cell(r);
    }
    for (const auto& key : order) {
      md += fmt::format("| {} | {} |", key.first, key.second);
      for (int64_t T : lens) md += fmt::format(" {} |", grid[key].count(T) ? grid[key][T] : std::string("-"));
      md += "\n";
    }
  }
  return md + "\n" + notes;
}

Status write_reports(const std::string& out_dir, const std::vector<ArenaRow>& rows, const std::string& markdown) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return Status::errorf("arena", "--out = '{}': cannot create the folder: {}", out_dir, ec.message());
  std::string runs = "name,config,seq_len,d_model,params,steps,train_tokens,train_seconds,train_tokens_per_s,"
                     "final_loss,metric_name,metric\n";
  std::string speed = "name,seq_len,d_model,context,prefill_tokens_per_s,decode_tokens_per_s,state_bytes\n";
  std::string loss = "name,seq_len,d_model,seconds,loss\n";
  for (const ArenaRow& r : rows) {
    runs += fmt::format("{},{},{},{},{},{},{},{:.3f},{:.1f},{:.5f},{},{:.5f}\n", r.name, r.config, r.seq_len,
                        r.d_model, r.params, r.steps, r.train_tokens, r.train_seconds, r.train_tokens_per_s,
                        r.final_loss, r.metric_name, r.metric);
    for (const ArenaSpeed& s : r.speed)
      speed += fmt::format("{},{},{},{},{:.1f},{:.2f},{}\n", r.name, r.seq_len, r.d_model, s.context,
                           s.prefill_tokens_per_s, s.decode_tokens_per_s, s.state_bytes);
    for (auto [t, l] : r.curve) loss += fmt::format("{},{},{},{:.3f},{:.5f}\n", r.name, r.seq_len, r.d_model, t, l);
  }
  for (auto [file, text] : {std::pair<const char*, const std::string*>{"arena.md", &markdown}, {"arena.csv", &runs},
                            {"speed.csv", &speed}, {"loss.csv", &loss}})
    SPEEDLM_TRY(io::write_file_atomic((std::filesystem::path(out_dir) / file).string(), *text));
  return Status::ok();
}

}  // namespace speedlm::arena
