#include "ops/activation/swiglu/swiglu.h"

namespace speedlm::ops {

Status swiglu_check(const Tensor& gu) {
  if (gu.dtype() != DType::F32) return Status::errorf("swiglu", "gu.dtype = {}: must be f32", dtype_name(gu.dtype()));
  if (gu.ndim() != 2) return Status::errorf("swiglu", "gu.shape = {}: must be [N, 2F]", shape_str(gu.shape()));
  if (gu.dim(1) < 2 || gu.dim(1) % 2 != 0)
    return Status::errorf("swiglu", "gu.shape = {}: last dim {} must be even and >= 2 (gate | up)",
                          shape_str(gu.shape()), gu.dim(1));
  return Status::ok();
}

}  // namespace speedlm::ops
