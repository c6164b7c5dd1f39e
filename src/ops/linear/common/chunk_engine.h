// The chunk machinery shared by the gated linear-attention ops (algorithms.md §1): in-chunk
// gate cumsums, the K x V state pass over chunks (forward and reverse), the inter-chunk output
// and gradient terms. The op supplies only the intra-chunk score matrix and its backward
// (simple_gla: one GEMM times Gamma; gla: sub-chunk rescaling). Gates are held per key
// channel, G: [L, K] (a per-head gate is broadcast, an absent one is zero), so the state pass is
// one code path. With at least one head per thread, each thread walks groups of 4 heads chunk
// by chunk (chunks outer, heads inner: a token row's heads share cache lines and pages); with
// fewer, threads run over (b, h, chunk) for every parallel phase and over (b, h) for the two
// sequential state scans.
#pragma once

#include <cstdint>

namespace speedlm::ops::linear_chunk {

struct Problem {
  int64_t B, T, H, K, V, C;
  int64_t gate_width;  // 0 (no gate), 1 (g: [B, T, H]) or K (g: [B, T, H, K])
  float scale;
};

// One chunk of one (b, h): rows t0 .. t0 + L - 1.
struct ChunkView {
  int64_t L, K, V;
  const float *q, *k;  // [L, K] with row stride ldk
  const float* v;      // [L, V] with row stride ldv
  int64_t ldk, ldv;
  const float* G;  // [L, K] in-chunk inclusive cumsum of the log gate, contiguous
};

struct Intra {
  // A: [L, L] (row stride L) = scale * sum_k q_tk k_sk exp(G_tk - G_sk) for s <= t, 0 above.
  void (*scores)(const ChunkView& c, float scale, float* A);
  // dA: [L, L] = dL/dA (lower triangle valid; the callee may overwrite it). Adds the score
  // gradients strictly below the diagonal into dq, dk ([L, K], row stride ld):
  // dq_t += scale sum_{s<t} dA_ts k_s exp(G_t - G_s), dk_s += scale sum_{t>s} dA_ts q_t exp(G_t - G_s).
  // (The diagonal has exp(0) = 1 for every gate; the engine adds it.)
  void (*score_grads)(const ChunkView& c, float scale, float* dA, float* dq, float* dk, int64_t ld);
};

// Shapes as in simple_gla.h / gla.h; g has gate_width entries per (b, t, h).
void chunk_fwd(const Problem& p, const Intra& intra, const float* q, const float* k, const float* v, const float* g,
               const float* h0, float* o, float* ht);
void chunk_bwd(const Problem& p, const Intra& intra, const float* q, const float* k, const float* v, const float* g,
               const float* h0, const float* d_o, const float* d_ht, float* dq, float* dk, float* dv, float* dg,
               float* dh0);
// Decode: the token recurrence in f32 over T steps, state: [B, H, K, V] in place.
void recurrent_step(const Problem& p, const float* q, const float* k, const float* v, const float* g, float* state,
                    float* o);

}  // namespace speedlm::ops::linear_chunk
