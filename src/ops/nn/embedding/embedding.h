// Embedding lookup: out[n, :] = weight[ids[n], :].
//   ids:    [N] i32, each in [0, V)
//   weight: [V, D]
//   out:    [N, D]
// Backward: d_weight[ids[n], :] += d_out[n, :] (a scatter-add; d_weight accumulates).
#pragma once

#include <cstdint>

#include "speedlm/tensor.h"

namespace speedlm::ops {

Status embedding_check(const Tensor& ids, const Tensor& weight);

template <typename T>
void embedding_ref_fwd(const int32_t* ids, int64_t N, const T* weight, int64_t D, T* out);
template <typename T>
void embedding_ref_bwd(const int32_t* ids, int64_t N, const T* d_out, int64_t D, T* d_weight);

void embedding_fast_fwd(const int32_t* ids, int64_t N, const float* weight, int64_t D, float* out);
void embedding_fast_bwd(const int32_t* ids, int64_t N, const float* d_out, int64_t V, int64_t D, float* d_weight);

}  // namespace speedlm::ops
