#include "ops/nn/embedding/embedding.h"

namespace speedlm::ops {

Status embedding_check(const Tensor& ids, const Tensor& weight) {
  if (ids.dtype() != DType::I32) return Status::errorf("embedding", "ids.dtype = {}: must be i32", dtype_name(ids.dtype()));
  if (ids.ndim() != 1) return Status::errorf("embedding", "ids.shape = {}: must be [N]", shape_str(ids.shape()));
  if (weight.dtype() != DType::F32)
    return Status::errorf("embedding", "weight.dtype = {}: must be f32", dtype_name(weight.dtype()));
  if (weight.ndim() != 2 || weight.dim(0) < 1 || weight.dim(1) < 1)
    return Status::errorf("embedding", "weight.shape = {}: must be [V, D] with V, D >= 1", shape_str(weight.shape()));
  const int32_t* id = ids.i32();
  for (int64_t n = 0; n < ids.numel(); ++n)
    if (id[n] < 0 || id[n] >= weight.dim(0))
      return Status::errorf("embedding", "ids[{}] = {}: must be in [0, {}) (V)", n, id[n], weight.dim(0));
  return Status::ok();
}

}  // namespace speedlm::ops
