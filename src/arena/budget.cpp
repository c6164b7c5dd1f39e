#include "arena/budget.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace speedlm::arena {

double Budget::progress(double elapsed_s, int64_t tokens_seen) const {
  return seconds > 0 ? elapsed_s / seconds : static_cast<double>(tokens_seen) / static_cast<double>(tokens);
}

Result<Budget> parse_budget(const std::string& text) {
  auto bad = [&] {
    return Status::errorf("arena", "--budget = '{}': expected minutes (\"2\", \"1.5m\", \"2min\"), seconds (\"90s\") "
                          "or tokens (\"500000tok\", \"300ktok\", \"2Mtok\")", text);
  };
  const char* begin = text.c_str();
  char* end = nullptr;
  double v = std::strtod(begin, &end);
  if (end == begin || !std::isfinite(v) || v <= 0) return bad();
  std::string unit(end);
  Budget b;
  if (unit.empty() || unit == "m" || unit == "min") b.seconds = 60.0 * v;
  else if (unit == "s") b.seconds = v;
  else if (unit == "tok") b.tokens = static_cast<int64_t>(v);
  else if (unit == "ktok") b.tokens = static_cast<int64_t>(v * 1e3);
  else if (unit == "Mtok") b.tokens = static_cast<int64_t>(v * 1e6);
  else return bad();
  if (b.seconds <= 0 && b.tokens <= 0) return bad();
  return b;
}

double budget_lr(double progress, double lr, const LrSchedule& sched) {
  constexpr double kWarmup = 0.05;
  if (progress < kWarmup) return lr * std::max(progress / kWarmup, 0.01);
  return lr * sched.factor(progress, kWarmup);
}

}  // namespace speedlm::arena
