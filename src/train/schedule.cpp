#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace speedlm {

double lr_at(int64_t step, double lr, double min_lr_ratio, int64_t warmup_steps, int64_t steps) {
  if (step < warmup_steps) return lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  double progress = static_cast<double>(step - warmup_steps) / static_cast<double>(std::max<int64_t>(1, steps - warmup_steps));
  progress = std::min(1.0, progress);
  double lr_min = lr * min_lr_ratio;
  return lr_min + (lr - lr_min) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace speedlm
