#include "train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace speedlm {

double LrSchedule::factor(double p, double p0) const {
  p = std::min(1.0, p);
  const double r = min_lr_ratio;
  if (kind == Kind::kWsd) return p <= 1.0 - decay_fraction ? 1.0 : r + (1.0 - r) * (1.0 - p) / decay_fraction;
  const double x = p0 >= 1.0 ? 1.0 : std::clamp((p - p0) / (1.0 - p0), 0.0, 1.0);
  return r + (1.0 - r) * 0.5 * (1.0 + std::cos(std::numbers::pi * x));
}

const char* LrSchedule::kind_name(Kind k) { return k == Kind::kWsd ? "wsd" : "cosine"; }

double lr_at(int64_t step, double lr, const LrSchedule& sched, int64_t warmup_steps, int64_t steps) {
  if (step < warmup_steps) return lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  const double n = static_cast<double>(std::max<int64_t>(1, steps));
  return lr * sched.factor(static_cast<double>(step) / n, static_cast<double>(warmup_steps) / n);
}

}  // namespace speedlm
