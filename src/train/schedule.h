// Learning rate at (0-based) step s: linear warmup to `lr` over warmup_steps, then
// cosine decay to lr * min_lr_ratio at `steps` (held there after):
//   s < W:  lr * (s + 1) / W
//   else:   lr_min + (lr - lr_min) * (1 + cos(pi * min(1, (s - W) / max(1, steps - W)))) / 2
#pragma once

#include <cstdint>

namespace speedlm {

double lr_at(int64_t step, double lr, double min_lr_ratio, int64_t warmup_steps, int64_t steps);

}  // namespace speedlm
