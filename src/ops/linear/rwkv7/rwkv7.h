// RWKV-7 WKV: the generalized delta rule, a diagonal-plus-low-rank (DPLR) recurrence. Per head h,
// state S: [K, V] in f32 (the transpose of RWKV's V x K):
//   S_t = diag(exp(w_t)) S_{t-1} + b_t (a_t^T S_{t-1}) + k_t v_t^T,   o_t = scale * S_t^T q_t
// (the low-rank term reads the undecayed previous state). RWKV-7 passes q = r, a = -kk,
// b = kk * iclr, w = -exp(-0.5) * sigmoid(.), scale = 1; the mixer builds those.
//   q, w, k, a, b: [B, T, H, K] (w in log space, w <= 0)   v: [B, T, H, V]
//   h0, ht: [B, H, K, V] (h0 may be null = zeros)   o: [B, T, H, V]
// README.md has the chunk form, its numerics and the backward.
#pragma once

#include <cstdint>

#include "speedlm/tensor.h"

namespace speedlm::ops {

struct Rwkv7Params {
  float scale = 1.0f;
  int64_t chunk = 32;  // chunk length C of the chunk form, in [1, 128]
};

struct Rwkv7Dims {
  int64_t B = 1, T = 0, H = 1, K = 0, V = 0;
};

Status rwkv7_check(const Rwkv7Params& p, const Rwkv7Dims& d);

// Gradients are overwritten; dh0 may be null (not wanted).
template <typename F>
struct Rwkv7Grads {
  F *dq = nullptr, *dw = nullptr, *dk = nullptr, *dv = nullptr, *da = nullptr, *db = nullptr, *dh0 = nullptr;
};

// Reference (the spec): the token recurrence in double. h0 and d_ht may be null.
void rwkv7_ref_fwd(const Rwkv7Params& p, const Rwkv7Dims& d, const double* q, const double* w, const double* k,
                   const double* v, const double* a, const double* b, const double* h0, double* o, double* ht);
void rwkv7_ref_bwd(const Rwkv7Params& p, const Rwkv7Dims& d, const double* q, const double* w, const double* k,
                   const double* v, const double* a, const double* b, const double* h0, const double* d_o,
                   const double* d_ht, const Rwkv7Grads<double>& grads);

// Chunk form (training, prefill): per chunk the DPLR system is solved with one triangular
// inverse and GEMMs; threaded over (b, h).
void rwkv7_chunk_fwd(const Rwkv7Params& p, const Rwkv7Dims& d, const float* q, const float* w, const float* k,
                     const float* v, const float* a, const float* b, const float* h0, float* o, float* ht);
void rwkv7_chunk_bwd(const Rwkv7Params& p, const Rwkv7Dims& d, const float* q, const float* w, const float* k,
                     const float* v, const float* a, const float* b, const float* h0, const float* d_o,
                     const float* d_ht, const Rwkv7Grads<float>& grads);

// Step form (decoding): T tokens one by one; `state` [B, H, K, V] is read and updated in place.
void rwkv7_step_fwd(const Rwkv7Params& p, const Rwkv7Dims& d, const float* q, const float* w, const float* k,
                    const float* v, const float* a, const float* b, float* state, float* o);
// Backward of the step form: recurrent, recomputing states from checkpoints every p.chunk tokens.
void rwkv7_step_bwd(const Rwkv7Params& p, const Rwkv7Dims& d, const float* q, const float* w, const float* k,
                    const float* v, const float* a, const float* b, const float* h0, const float* d_o,
                    const float* d_ht, const Rwkv7Grads<float>& grads);

}  // namespace speedlm::ops
