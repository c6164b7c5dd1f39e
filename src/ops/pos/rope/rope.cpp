#include "ops/pos/rope/rope.h"

#include <cmath>

namespace speedlm::ops {

Status rope_check(const RopeParams& p, int64_t head_dim) {
  if (!(std::isfinite(p.theta) && p.theta > 0.0f))
    return Status::errorf("rope", "theta = {}: must be finite and > 0", p.theta);
  if (head_dim < 2) return Status::errorf("rope", "head_dim = {}: must be >= 2", head_dim);
  if (head_dim % 2 != 0) return Status::errorf("rope", "head_dim = {}: must be even", head_dim);
  return Status::ok();
}

}  // namespace speedlm::ops
