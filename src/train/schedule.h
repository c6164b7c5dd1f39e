// Learning-rate schedules: linear warmup to the peak `lr`, then a decay to lr * min_lr_ratio at
// the end of training, either
//   cosine: lr_min + (lr - lr_min) (1 + cos(pi x)) / 2, x the fraction of the post-warmup part
//           done (Loshchilov & Hutter), or
//   wsd:    warmup-stable-decay: the peak held until the last `decay_fraction` of training,
//           then linear to lr_min (MiniCPM, arXiv 2404.06395; Hägele et al., arXiv 2405.18392).
//           A run keeps its full step size for longer: tasks whose loss sits on a plateau before
//           an abrupt drop (MQAR's recall circuit) get past it within a shorter budget.
#pragma once

#include <cstdint>

namespace speedlm {

struct LrSchedule {
  enum class Kind { kCosine, kWsd };
  Kind kind = Kind::kCosine;
  double min_lr_ratio = 0.1;    // the end of training decays to lr * min_lr_ratio
  double decay_fraction = 0.2;  // wsd: the last fraction of training that decays, in (0, 1]
  // The factor on the peak lr at training progress p (0 start, 1 end; held after 1) once the
  // warmup, which ends at p0 < 1, is over (p >= p0).
  double factor(double p, double p0) const;
  static const char* kind_name(Kind k);
};

// Learning rate at (0-based) step s of `steps`: lr * (s + 1) / W for s < W = warmup_steps, then
// lr * sched.factor(s / steps, W / steps).
double lr_at(int64_t step, double lr, const LrSchedule& sched, int64_t warmup_steps, int64_t steps);

}  // namespace speedlm
