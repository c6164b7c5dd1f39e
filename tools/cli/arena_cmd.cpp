// `speedlm arena`: flags -> ArenaOptions, progress on stderr, the table (and the best
// model's sample) on stdout, then the plots by scripts/plot_arena.py where matplotlib exists.
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "args.h"
#include "speedlm/speedlm.h"

namespace speedlm::cli {

namespace {

Result<std::vector<int64_t>> int_list(const ParsedArgs& a, const std::string& flag) {
  std::vector<int64_t> out;
  if (!a.has(flag)) return out;
  std::stringstream ss(a.str(flag));
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0')
      return Status::errorf("arena", "--{} = '{}': expected comma-separated integers", flag, a.str(flag));
    out.push_back(v);
  }
  return out;
}

// The first Python that has matplotlib (Debian's python3-matplotlib lives under /usr/bin/python3,
// which a pyenv or venv python3 on PATH does not see), or "".
std::string python_with_matplotlib() {
  for (const char* py : {"/usr/bin/python3", "python3"})
    if (std::system(fmt::format("{} -c 'import matplotlib' >/dev/null 2>&1", py).c_str()) == 0) return py;
  return "";
}

}  // namespace

int run_arena_cmd(const ParsedArgs& a) {
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    return 1;
  };
  ArenaOptions o;
  std::stringstream configs(a.str("configs"));
  for (std::string c; std::getline(configs, c, ',');)
    if (!c.empty()) o.config_paths.push_back(c);
  o.task = a.str("task"), o.data_dir = a.str("data"), o.out_dir = a.str("out"), o.budget = a.str("budget");
  o.overrides = a.str("set"), o.batch_size = a.integer("batch"), o.lr = a.real("lr");
  o.vocab_size = a.integer("vocab"), o.kv_pairs = a.integer("kv-pairs"), o.decode_tokens = a.integer("decode-tokens");
  o.skip_speed = a.flag("skip-speed"), o.test_examples = a.integer("test-examples");
  o.stop_at = a.real("stop-at");
  o.eval_tokens = a.integer("eval-tokens"), o.prompt = a.str("prompt"), o.sample_tokens = a.integer("sample-tokens");
  o.threads = static_cast<int>(a.integer("threads")), o.precision = a.str("precision");
  o.seed = static_cast<uint64_t>(a.integer("seed"));
  for (auto [flag, dst] : {std::pair<const char*, std::vector<int64_t>*>{"seq-lens", &o.seq_lens},
                           {"d-models", &o.d_models}, {"contexts", &o.contexts}}) {
    auto v = int_list(a, flag);
    if (!v) return fail(v.status());
    if (a.has(flag)) *dst = *v;
  }
  auto r = run_arena(o, [](const std::string& line) {
    std::fprintf(stderr, "arena: %s\n", line.c_str());
    std::fflush(stderr);
  });
  if (!r) return fail(r.status());
  std::fputs(r->table.c_str(), stdout);
  if (!r->sample.empty()) std::printf("\n--- sample from the best model (%s) ---\n%s\n", r->best.c_str(), r->sample.c_str());
  std::fflush(stdout);
  if (a.flag("no-plots")) return 0;
  std::string py = python_with_matplotlib();
  if (py.empty()) {
    std::fprintf(stderr, "arena: plots skipped: python3-matplotlib is not installed; the tables are in %s\n",
                 o.out_dir.c_str());
    return 0;
  }
  std::string cmd = fmt::format("{} '{}/plot_arena.py' '{}'", py, SPEEDLM_SCRIPTS_DIR, o.out_dir);
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "arena: plotting failed (%s); the tables are in %s\n",
                                                 cmd.c_str(), o.out_dir.c_str());
  return 0;
}

}  // namespace speedlm::cli
