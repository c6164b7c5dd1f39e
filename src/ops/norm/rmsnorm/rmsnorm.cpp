#include "ops/norm/rmsnorm/rmsnorm.h"

#include <cmath>

namespace speedlm::ops {

Status rmsnorm_check(const RmsNormParams& p, const Tensor& x, const Tensor& w) {
  if (!(std::isfinite(p.eps) && p.eps > 0.0f)) return Status::errorf("rmsnorm", "eps = {}: must be finite and > 0", p.eps);
  if (x.dtype() != DType::F32) return Status::errorf("rmsnorm", "x.dtype = {}: must be f32", dtype_name(x.dtype()));
  if (w.dtype() != DType::F32) return Status::errorf("rmsnorm", "w.dtype = {}: must be f32", dtype_name(w.dtype()));
  if (x.ndim() != 2) return Status::errorf("rmsnorm", "x.shape = {}: must be [N, D]", shape_str(x.shape()));
  if (x.dim(1) < 1) return Status::errorf("rmsnorm", "x.shape = {}: D must be >= 1", shape_str(x.shape()));
  if (w.shape() != Shape{x.dim(1)})
    return Status::errorf("rmsnorm", "w.shape = {}: must be [{}] (D of x)", shape_str(w.shape()), x.dim(1));
  return Status::ok();
}

}  // namespace speedlm::ops
