#include "ops/loss/cross_entropy/cross_entropy.h"

namespace speedlm::ops {

Status cross_entropy_check(const CrossEntropyParams& p, const Tensor& logits, const Tensor& targets) {
  if (logits.dtype() != DType::F32)
    return Status::errorf("cross_entropy", "logits.dtype = {}: must be f32", dtype_name(logits.dtype()));
  if (logits.ndim() != 2 || logits.dim(1) < 1)
    return Status::errorf("cross_entropy", "logits.shape = {}: must be [N, V] with V >= 1", shape_str(logits.shape()));
  if (targets.dtype() != DType::I32)
    return Status::errorf("cross_entropy", "targets.dtype = {}: must be i32", dtype_name(targets.dtype()));
  if (targets.shape() != Shape{logits.dim(0)})
    return Status::errorf("cross_entropy", "targets.shape = {}: must be [{}] (N of logits)", shape_str(targets.shape()),
                          logits.dim(0));
  const int32_t* t = targets.i32();
  int64_t V = logits.dim(1);
  for (int64_t n = 0; n < targets.numel(); ++n)
    if (t[n] != p.ignore_index && (t[n] < 0 || t[n] >= V))
      return Status::errorf("cross_entropy", "targets[{}] = {}: must be in [0, {}) (V) or ignore_index = {}", n, t[n],
                            V, p.ignore_index);
  return Status::ok();
}

}  // namespace speedlm::ops
