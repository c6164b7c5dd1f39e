// Fused softmax cross-entropy per row, with an ignore index.
//   logits: [N, V]   targets: [N] i32 (in [0, V) or == ignore_index)
//   loss:   [N]      loss[n] = lse[n] - logits[n, targets[n]]; 0 for ignored rows
//   lse:    [N]      log-sum-exp per row, saved for backward
// Backward: d_logits[n, :] = d_loss[n] * (softmax(logits[n]) - onehot(targets[n])); 0 for ignored rows.
// d_logits may alias logits (the backward then runs in place, saving an [N, V] buffer).
#pragma once

#include <cstdint>

#include "speedlm/tensor.h"

namespace speedlm::ops {

struct CrossEntropyParams {
  int32_t ignore_index = -100;
};

Status cross_entropy_check(const CrossEntropyParams& p, const Tensor& logits, const Tensor& targets);

template <typename T>
void cross_entropy_ref_fwd(const CrossEntropyParams& p, const T* logits, const int32_t* targets, int64_t N,
                           int64_t V, T* loss, T* lse);
template <typename T>
void cross_entropy_ref_bwd(const CrossEntropyParams& p, const T* logits, const int32_t* targets, const T* d_loss,
                           int64_t N, int64_t V, T* d_logits);

void cross_entropy_fast_fwd(const CrossEntropyParams& p, const float* logits, const int32_t* targets, int64_t N,
                            int64_t V, float* loss, float* lse);
// The mean of loss over rows whose target is not ignore_index (0 when there are none);
// count receives their number.
float cross_entropy_mean(const CrossEntropyParams& p, const float* loss, const int32_t* targets, int64_t N,
                         int64_t& count);

// d_logits16, when given, also receives d_logits rounded to bf16 ([N, V]), written while each
// row is in cache: the operand of the bf16 matmuls of the LM head's backward.
void cross_entropy_fast_bwd(const CrossEntropyParams& p, const float* logits, const int32_t* targets,
                            const float* lse, const float* d_loss, int64_t N, int64_t V, float* d_logits,
                            uint16_t* d_logits16 = nullptr);

}  // namespace speedlm::ops
