// Selective scan (Mamba-1 S6): per batch b, channel d and state index n,
//   h_t[d, n] = exp(delta_t[d] A[d, n]) h_{t-1}[d, n] + delta_t[d] B_t[n] u_t[d]
//   y_t[d]    = sum_n C_t[n] h_t[d, n] + D[d] u_t[d]
//   u, delta, y: [B, T, D]   A: [D, N] (A <= 0)   Bm, Cm: [B, T, N]   Dskip: [D]
//   h0, ht: [B, D, N] (initial and final state, f32; h0 may be null = zeros)
// delta > 0 is given (the mixer applies softplus(dt + bias)); the output gate y * silu(z) is the
// mixer's. The decay depends on (d, n), so this is not a GLA-style chunked matmul: the chunk form
// is a channel-parallel scan with state checkpoints every `chunk` tokens (README.md).
#pragma once

#include <cstdint>

#include "speedlm/tensor.h"

namespace speedlm::ops {

struct SelectiveScanParams {
  int64_t chunk = 64;  // time block of the chunk form and checkpoint interval of its backward
};

struct SelectiveScanDims {
  int64_t B = 1, T = 0, D = 0, N = 0;
};

Status selective_scan_check(const SelectiveScanParams& p, const SelectiveScanDims& d);

// Gradients are overwritten. dDskip and dh0 may be null (not wanted).
template <typename F>
struct SelectiveScanGrads {
  F *du = nullptr, *ddelta = nullptr, *dA = nullptr, *dB = nullptr, *dC = nullptr, *dDskip = nullptr,
    *dh0 = nullptr;
};

// Reference (the spec): plain loops in double. Dskip, h0, d_ht may be null.
void selective_scan_ref_fwd(const SelectiveScanParams& p, const SelectiveScanDims& d, const double* u,
                            const double* delta, const double* A, const double* Bm, const double* Cm,
                            const double* Dskip, const double* h0, double* y, double* ht);
void selective_scan_ref_bwd(const SelectiveScanParams& p, const SelectiveScanDims& d, const double* u,
                            const double* delta, const double* A, const double* Bm, const double* Cm,
                            const double* Dskip, const double* h0, const double* d_y, const double* d_ht,
                            const SelectiveScanGrads<double>& grads);

// Chunk form (training, prefill): threaded over (b, channel blocks), vectorised over channels.
void selective_scan_chunk_fwd(const SelectiveScanParams& p, const SelectiveScanDims& d, const float* u,
                              const float* delta, const float* A, const float* Bm, const float* Cm,
                              const float* Dskip, const float* h0, float* y, float* ht);
// Recomputes states from checkpoints every p.chunk tokens.
void selective_scan_chunk_bwd(const SelectiveScanParams& p, const SelectiveScanDims& d, const float* u,
                              const float* delta, const float* A, const float* Bm, const float* Cm,
                              const float* Dskip, const float* h0, const float* d_y, const float* d_ht,
                              const SelectiveScanGrads<float>& grads);
// The same pair for training: the forward also writes the state checkpoints every p.chunk tokens
// to `ckpt` (selective_scan_chunk_ckpt_floats(p, d) floats, an opaque layout) and the backward
// reads them (same inputs and h0) instead of recomputing them in a pass of its own.
int64_t selective_scan_chunk_ckpt_floats(const SelectiveScanParams& p, const SelectiveScanDims& d);
void selective_scan_chunk_fwd_ckpt(const SelectiveScanParams& p, const SelectiveScanDims& d, const float* u,
                                   const float* delta, const float* A, const float* Bm, const float* Cm,
                                   const float* Dskip, const float* h0, float* y, float* ht, float* ckpt);
void selective_scan_chunk_bwd_ckpt(const SelectiveScanParams& p, const SelectiveScanDims& d, const float* u,
                                   const float* delta, const float* A, const float* Bm, const float* Cm,
                                   const float* Dskip, const float* h0, const float* d_y, const float* d_ht,
                                   const SelectiveScanGrads<float>& grads, const float* ckpt);

// Step form (decoding): tokens one at a time, every (b, d) in parallel; `state` [B, D, N] is
// read and updated in place.
void selective_scan_step_fwd(const SelectiveScanParams& p, const SelectiveScanDims& d, const float* u,
                             const float* delta, const float* A, const float* Bm, const float* Cm,
                             const float* Dskip, float* state, float* y);
// Backward of the step form: the token recurrence reversed with every state kept (no checkpoints).
void selective_scan_step_bwd(const SelectiveScanParams& p, const SelectiveScanDims& d, const float* u,
                             const float* delta, const float* A, const float* Bm, const float* Cm,
                             const float* Dskip, const float* h0, const float* d_y, const float* d_ht,
                             const SelectiveScanGrads<float>& grads);

}  // namespace speedlm::ops
