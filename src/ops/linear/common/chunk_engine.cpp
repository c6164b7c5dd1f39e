#include "ops/linear/common/chunk_engine.h"

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <vector>

#include "core/parallel.h"
#include "core/simd_math.h"
#include "ops/linear/common/prefetch.h"
#include "ops/linear/common/small_gemm.h"
#include "speedlm/tensor.h"

namespace speedlm::ops::linear_chunk {

namespace {

struct Grid {
  const Problem& p;
  int64_t N = (p.T + p.C - 1) / p.C;  // chunks per sequence
  int64_t KV = p.K * p.V;
  int64_t len(int64_t n) const { return std::min(p.C, p.T - n * p.C); }
  // Offsets of row t0 of head (b, h) in [B, T, H, K] and [B, T, H, V].
  int64_t k_at(int64_t bh, int64_t t0) const { return ((bh / p.H * p.T + t0) * p.H + bh % p.H) * p.K; }
  int64_t v_at(int64_t bh, int64_t t0) const { return ((bh / p.H * p.T + t0) * p.H + bh % p.H) * p.V; }
};

// G[t, k] = sum_{s <= t} g_s (in-chunk inclusive cumsum), broadcast over k for a per-head gate.
void load_gates(const Grid& gr, const float* g, int64_t bh, int64_t t0, int64_t L, float* G) {
  const Problem& p = gr.p;
  const int64_t K = p.K;
  if (p.gate_width == 0) {
    std::fill(G, G + L * K, 0.0f);
    return;
  }
  const int64_t b = bh / p.H, h = bh % p.H;
  for (int64_t t = 0; t < L; ++t) {
    const float* __restrict gt = g + ((b * p.T + t0 + t) * p.H + h) * p.gate_width;
    float* __restrict Gt = G + t * K;
    if (p.gate_width == 1) {
      const float prev = t > 0 ? Gt[-K] : 0.0f;
      std::fill(Gt, Gt + K, prev + gt[0]);
    } else if (t == 0) {
      std::copy(gt, gt + K, Gt);
    } else {
#pragma omp simd
      for (int64_t kk = 0; kk < K; ++kk) Gt[kk] = Gt[kk - K] + gt[kk];
    }
  }
}

// Row scalings by gate factors, in the two sign conventions the kernels need:
// to_end: out = x o exp(G_last - G_t) (<= 1); from_start: out = s x o exp(G_t) (<= s).
// A per-head gate (row_gate) has one factor per row: one exp per row instead of K.
void scale_rows_to_end(const float* x, int64_t ldx, const float* G, int64_t L, int64_t K, bool row_gate, float* out,
                       int64_t ldo) {
  const float* Gl = G + (L - 1) * K;
  for (int64_t t = 0; t < L; ++t) {
    if (row_gate) {
      const float f = exp_f32(Gl[0] - G[t * K]);
#pragma omp simd
      for (int64_t kk = 0; kk < K; ++kk) out[t * ldo + kk] = x[t * ldx + kk] * f;
      continue;
    }
#pragma omp simd
    for (int64_t kk = 0; kk < K; ++kk) out[t * ldo + kk] = x[t * ldx + kk] * exp_f32(Gl[kk] - G[t * K + kk]);
  }
}
void scale_rows_from_start(const float* x, int64_t ldx, const float* G, int64_t L, int64_t K, bool row_gate, float s,
                           float* out, int64_t ldo) {
  for (int64_t t = 0; t < L; ++t) {
    if (row_gate) {
      const float f = s * exp_f32(G[t * K]);
#pragma omp simd
      for (int64_t kk = 0; kk < K; ++kk) out[t * ldo + kk] = x[t * ldx + kk] * f;
      continue;
    }
#pragma omp simd
    for (int64_t kk = 0; kk < K; ++kk) out[t * ldo + kk] = s * x[t * ldx + kk] * exp_f32(G[t * K + kk]);
  }
}

// Rows of a [B, T, H, width] tensor for prefetch_chunk; null or width 0: none.
struct Rows {
  const float* base;
  int64_t width;
  bool write = false;
};

// Requests chunk n's rows of head bh ahead of use (nothing if n is out of range): at long T the
// inputs come from memory, strided by H rows, and the per-chunk products stall on them otherwise.
void prefetch_chunk(const Grid& gr, int64_t bh, int64_t n, std::initializer_list<Rows> rows) {
  if (n < 0 || n >= gr.N) return;
  const Problem& p = gr.p;
  const int64_t t0 = n * p.C, L = gr.len(n);
  for (const Rows& r : rows) {
    if (!r.base || r.width == 0) continue;
    queue_prefetch(r.base + ((bh / p.H * p.T + t0) * p.H + bh % p.H) * r.width, L, p.H * r.width, r.width, r.write);
  }
}

// Tasks per thread so that each parallel region carries >= ~30 us of work (DESIGN.md):
// about 1e6 flops at the small-GEMM rates these kernels reach.
int64_t grain_for(double flops_per_task) { return std::max<int64_t>(1, static_cast<int64_t>(1e6 / flops_per_task)); }


// The calling thread's workspace of at least n floats, kept across calls (contents undefined): the
// backward's saved states are megabytes at long T, and a fresh buffer per call costs its page
// faults and zeroing, ~10% of a T = 16k fwd+bwd.
float* thread_workspace(int64_t n) {
  thread_local std::vector<float> w;
  if (static_cast<int64_t>(w.size()) < n) w.resize(static_cast<size_t>(n));
  return w.data();
}

// Every (b, h, chunk) task, threaded, each thread with its own workspace of `ws` floats.
template <typename Fn>
void for_chunks(const Grid& gr, int64_t ws, Fn&& fn) {
  const Problem& p = gr.p;
  const double flops = 2.0 * p.C * (3.0 * p.K * p.V + static_cast<double>(p.C) * (p.K + p.V));
  parallel_for(p.B * p.H * gr.N, grain_for(flops), [&](int64_t i0, int64_t i1) {
    float* w = thread_workspace(ws);
    for (int64_t i = i0; i < i1; ++i) fn(i / gr.N, i % gr.N, w);
  });
}

// Heads a thread walks together, chunks outer and heads inner: the heads of a token row share its
// cache lines and pages, so a chunk's rows arrive for all of them at once (at long T they come
// from memory, and one head at a time took a TLB miss per row and head).
constexpr int64_t kHeadGroup = 4;

// Every (b, h), threaded, in groups of up to kHeadGroup heads of one thread: fn(g0, g1, w) runs
// heads [g0, g1) chunk by chunk; w holds kHeadGroup slices of `per_head` floats, then `shared`.
template <typename Fn>
void for_head_groups(const Grid& gr, int64_t per_head, int64_t shared, Fn&& fn) {
  const Problem& p = gr.p;
  const double flops = 2.0 * p.T * (3.0 * p.K * p.V + static_cast<double>(p.C) * (p.K + p.V));
  parallel_for(p.B * p.H, grain_for(flops), [&](int64_t b0, int64_t b1) {
    float* w = thread_workspace(kHeadGroup * per_head + shared);
    for (int64_t g0 = b0; g0 < b1; g0 += kHeadGroup) fn(g0, std::min(b1, g0 + kHeadGroup), w);
  });
}

// With at least one head per thread, each thread runs whole heads chunk after chunk with the
// state in cache (no [N+1, K, V] checkpoints in the forward, its group's in the backward). With
// fewer heads than threads, chunks are threaded and the state pass runs between the phases.
bool by_heads(const Problem& p) { return p.B * p.H >= num_threads(); }

// Chunk n's state contribution U = (K o exp(G_last - G))^T V [K, V] and decay dc = exp(G_last) [K].
// Workspace 2 C K.
void chunk_contribution(const Grid& gr, const float* k, const float* v, const float* g, int64_t bh, int64_t n,
                        float* U, float* dc, float* w) {
  const Problem& p = gr.p;
  const int64_t K = p.K, V = p.V, C = p.C, t0 = n * C, L = gr.len(n);
  float *G = w, *Kd = w + C * K;
  load_gates(gr, g, bh, t0, L, G);
  scale_rows_to_end(k + gr.k_at(bh, t0), p.H * K, G, L, K, p.gate_width <= 1, Kd, K);
  small_gemm(true, false, K, V, L, 1.0f, Kd, K, v + gr.v_at(bh, t0), p.H * V, 0.0f, U, V);
  for (int64_t kk = 0; kk < K; ++kk) dc[kk] = exp_f32(G[(L - 1) * K + kk]);
}

// S' = dc o S + U (row-wise decay; S' may be S).
void advance_state(int64_t K, int64_t V, const float* dc, const float* U, const float* S, float* S_next) {
  for (int64_t kk = 0; kk < K; ++kk) {
#pragma omp simd
    for (int64_t vv = 0; vv < V; ++vv) S_next[kk * V + vv] = dc[kk] * S[kk * V + vv] + U[kk * V + vv];
  }
}

// states: [BH, N+1, K, V] with slot n = state entering chunk n; decay: [BH, N, K].
// Slot n+1 first receives chunk n's contribution (threaded over chunks), then one sequential
// scan per head turns it into S_{n+1} = decay_n o S_n + U_n.
void compute_states(const Grid& gr, const float* k, const float* v, const float* g, const float* h0, float* states,
                    float* decay) {
  const Problem& p = gr.p;
  const int64_t K = p.K, V = p.V, C = p.C, N = gr.N, KV = gr.KV;
  for_chunks(gr, 2 * C * K, [&](int64_t bh, int64_t n, float* w) {
    chunk_contribution(gr, k, v, g, bh, n, states + (bh * (N + 1) + n + 1) * KV, decay + (bh * N + n) * K, w);
  });
  parallel_for(p.B * p.H, grain_for(2.0 * N * KV), [&](int64_t b0, int64_t b1) {
    for (int64_t bh = b0; bh < b1; ++bh) {
      float* S = states + bh * (N + 1) * KV;
      if (h0) std::memcpy(S, h0 + bh * KV, sizeof(float) * KV);
      else std::fill(S, S + KV, 0.0f);
      for (int64_t n = 0; n < N; ++n) {
        const float* dc = decay + (bh * N + n) * K;
        const float* cur = S + n * KV;
        float* next = S + (n + 1) * KV;
        for (int64_t kk = 0; kk < K; ++kk) {
#pragma omp simd
          for (int64_t vv = 0; vv < V; ++vv) next[kk * V + vv] += dc[kk] * cur[kk * V + vv];
        }
      }
    }
  });
}

// Chunk n's output from the state S entering it. Workspace 2 C K + C C.
void chunk_output(const Grid& gr, const Intra& intra, const float* q, const float* k, const float* v, const float* g,
                  int64_t bh, int64_t n, const float* S, float* o, float* w) {
  const Problem& p = gr.p;
  const int64_t K = p.K, V = p.V, C = p.C, t0 = n * C, L = gr.len(n);
  float *G = w, *Qg = w + C * K, *A = w + 2 * C * K;
  load_gates(gr, g, bh, t0, L, G);
  const float *qc = q + gr.k_at(bh, t0), *kc = k + gr.k_at(bh, t0), *vc = v + gr.v_at(bh, t0);
  float* oc = o + gr.v_at(bh, t0);
  scale_rows_from_start(qc, p.H * K, G, L, K, p.gate_width <= 1, p.scale, Qg, K);
  small_gemm(false, false, L, V, K, 1.0f, Qg, K, S, V, 0.0f, oc, p.H * V);
  intra.scores(ChunkView{L, K, V, qc, kc, vc, p.H * K, p.H * V, G}, p.scale, A);
  small_gemm(false, false, L, V, L, 1.0f, A, L, vc, p.H * V, 1.0f, oc, p.H * V);
}

// W (beta 0) or W + (beta 1) scale (Q o exp(G))^T dO of chunk n. Workspace 2 C K.
void chunk_state_grad(const Grid& gr, const float* q, const float* g, const float* d_o, int64_t bh, int64_t n,
                      float beta, float* W, float* w) {
  const Problem& p = gr.p;
  const int64_t K = p.K, V = p.V, C = p.C, t0 = n * C, L = gr.len(n);
  float *G = w, *Qg = w + C * K;
  load_gates(gr, g, bh, t0, L, G);
  scale_rows_from_start(q + gr.k_at(bh, t0), p.H * K, G, L, K, p.gate_width <= 1, p.scale, Qg, K);
  small_gemm(true, false, K, V, L, 1.0f, Qg, K, d_o + gr.v_at(bh, t0), p.H * V, beta, W, V);
}

struct Io {
  const float *q, *k, *v, *g, *d_o;
  float *dq, *dk, *dv, *dg;
};

constexpr int64_t grads_workspace(int64_t C, int64_t K) { return 5 * C * K + 2 * C * C + C + 2 * K; }

// dg of chunk rows t0 .. t0 + L - 1 (README: each sum taken directly). dq, dQa, dKa, dKi as in
// chunk_grads (dq: [L, K] at row stride ldk, the rest contiguous); work: Kd [L, K], rev, pre [K].
// Restrict pointers and branch-free inner loops so each one vectorises.
void gate_grads(const Grid& gr, int64_t bh, int64_t t0, int64_t L, const float* __restrict qc,
                const float* __restrict kc, const float* __restrict dqc, const float* __restrict dQa,
                const float* __restrict dKa, const float* __restrict dKi, const float* __restrict S,
                const float* __restrict dS, const float* __restrict dc, float* __restrict Kd, float* __restrict rev,
                float* __restrict pre, float* dg) {
  const Problem& p = gr.p;
  const int64_t K = p.K, V = p.V, ldk = p.H * K;
  for (int64_t kk = 0; kk < K; ++kk) {
    float state = 0.0f;
#pragma omp simd reduction(+ : state)
    for (int64_t vv = 0; vv < V; ++vv) state += S[kk * V + vv] * dS[kk * V + vv];
    rev[kk] = 0.0f;
    pre[kk] = dc[kk] * state;
  }
  for (int64_t t = L - 1; t >= 0; --t) {
#pragma omp simd
    for (int64_t kk = 0; kk < K; ++kk) {
      rev[kk] += qc[t * ldk + kk] * (dqc[t * ldk + kk] + dQa[t * K + kk]) - kc[t * ldk + kk] * dKa[t * K + kk];
      Kd[t * K + kk] = rev[kk];
    }
  }
  for (int64_t t = 0; t < L; ++t) {
    float* gt = dg + ((bh / p.H * p.T + t0 + t) * p.H + bh % p.H) * p.gate_width;
    if (p.gate_width == 1) {
      float total = 0.0f;
#pragma omp simd reduction(+ : total)
      for (int64_t kk = 0; kk < K; ++kk) {
        total += Kd[t * K + kk] + pre[kk];
        pre[kk] += kc[t * ldk + kk] * dKi[t * K + kk];
      }
      gt[0] = total;
    } else {
#pragma omp simd
      for (int64_t kk = 0; kk < K; ++kk) {
        gt[kk] = Kd[t * K + kk] + pre[kk];
        pre[kk] += kc[t * ldk + kk] * dKi[t * K + kk];
      }
    }
  }
}

// Gradients of chunk n's inputs from the state entering it (S), the gradient of the state leaving
// it (dS) and its decay dc. Workspace grads_workspace(C, K).
void chunk_grads(const Grid& gr, const Intra& intra, const Io& io, int64_t bh, int64_t n, const float* S,
                 const float* dS, const float* dc, float* w) {
  const Problem& p = gr.p;
  const int64_t K = p.K, V = p.V, C = p.C;
  const float *q = io.q, *k = io.k, *v = io.v, *g = io.g, *d_o = io.d_o;
  float *dq = io.dq, *dk = io.dk, *dv = io.dv, *dg = io.dg;
  float *G = w, *Kd = w + C * K, *dKi = w + 2 * C * K, *dQa = w + 3 * C * K, *dKa = w + 4 * C * K;
  float *A = w + 5 * C * K, *dA = A + C * C, *diag = dA + C * C, *rev = diag + C, *pre = rev + K;
  const int64_t t0 = n * C, L = gr.len(n), ldk = p.H * K, ldv = p.H * V;
  load_gates(gr, g, bh, t0, L, G);
  const float *qc = q + gr.k_at(bh, t0), *kc = k + gr.k_at(bh, t0), *vc = v + gr.v_at(bh, t0);
  const float* doc = d_o + gr.v_at(bh, t0);
  float *dqc = dq + gr.k_at(bh, t0), *dkc = dk + gr.k_at(bh, t0), *dvc = dv + gr.v_at(bh, t0);
  const ChunkView cv{L, K, V, qc, kc, vc, ldk, ldv, G};
  intra.scores(cv, p.scale, A);
  small_gemm(false, true, L, L, V, 1.0f, doc, ldv, vc, ldv, 0.0f, dA, L);
  // dV = A^T dO + (K o exp(G_last - G)) dS
  small_gemm(true, false, L, V, L, 1.0f, A, L, doc, ldv, 0.0f, dvc, ldv);
  scale_rows_to_end(kc, ldk, G, L, K, p.gate_width <= 1, Kd, K);
  small_gemm(false, false, L, V, K, 1.0f, Kd, K, dS, V, 1.0f, dvc, ldv);
  // Inter-chunk parts: dq = scale exp(G) o (dO S^T) (in dq), dk = exp(G_last - G) o (V dS^T) (in dKi).
  small_gemm(false, true, L, K, V, 1.0f, doc, ldv, S, V, 0.0f, dqc, ldk);
  small_gemm(false, true, L, K, V, 1.0f, vc, ldv, dS, V, 0.0f, dKi, K);
  scale_rows_from_start(dqc, ldk, G, L, K, p.gate_width <= 1, p.scale, dqc, ldk);
  scale_rows_to_end(dKi, K, G, L, K, p.gate_width <= 1, dKi, K);
  // Intra-chunk parts below the diagonal (dQa, dKa); the diagonal (exp(0) = 1 for every gate)
  // is added last, so the gate gradient never subtracts two O(1) diagonal terms.
  for (int64_t t = 0; t < L; ++t) diag[t] = p.scale * dA[t * L + t];
  std::fill(dQa, dQa + L * K, 0.0f);
  std::fill(dKa, dKa + L * K, 0.0f);
  intra.score_grads(cv, p.scale, dA, dQa, dKa, K);
  if (p.gate_width > 0) {
    // g_t moves G_u for u >= t: dg_t = sum_{u>=t} q_u o dq_u - sum_{u>=t} k_u o dk_u^intra
    //   + sum_{s<t} k_s o dk_s^inter + exp(G_last) o rowsum(S o dS).
    // Each sum is taken directly (no difference of two cumulated totals), so strongly decayed
    // gates keep their tiny gradients accurate.
    gate_grads(gr, bh, t0, L, qc, kc, dqc, dQa, dKa, dKi, S, dS, dc, Kd, rev, pre, dg);
  }
  for (int64_t t = 0; t < L; ++t) {
#pragma omp simd
    for (int64_t kk = 0; kk < K; ++kk) {
      dqc[t * ldk + kk] += dQa[t * K + kk] + diag[t] * kc[t * ldk + kk];
      dkc[t * ldk + kk] = dKi[t * K + kk] + dKa[t * K + kk] + diag[t] * qc[t * ldk + kk];
    }
  }
}

}  // namespace

void chunk_fwd(const Problem& p, const Intra& intra, const float* q, const float* k, const float* v, const float* g,
               const float* h0, float* o, float* ht) {
  Grid gr{p};
  const int64_t K = p.K, V = p.V, C = p.C, N = gr.N, KV = gr.KV, BH = p.B * p.H;
  if (N == 0) {
    if (ht) for (int64_t i = 0; i < BH * KV; ++i) ht[i] = h0 ? h0[i] : 0.0f;
    return;
  }
  if (by_heads(p)) {
    const int64_t per = 2 * KV + K;  // S, U, dc of a head
    for_head_groups(gr, per, 2 * C * K + C * C, [&](int64_t g0, int64_t g1, float* w) {
      float* cw = w + kHeadGroup * per;
      for (int64_t bh = g0; bh < g1; ++bh) {
        float* S = w + (bh - g0) * per;
        if (h0) std::memcpy(S, h0 + bh * KV, sizeof(float) * KV);
        else std::fill(S, S + KV, 0.0f);
      }
      for (int64_t n = 0; n < N; ++n)
        for (int64_t bh = g0; bh < g1; ++bh) {
          float *S = w + (bh - g0) * per, *U = S + KV, *dc = U + KV;
          prefetch_chunk(gr, bh, n + 1, {{q, K}, {k, K}, {v, V}, {g, p.gate_width}, {o, V, true}});
          chunk_output(gr, intra, q, k, v, g, bh, n, S, o, cw);
          chunk_contribution(gr, k, v, g, bh, n, U, dc, cw);
          advance_state(K, V, dc, U, S, S);
        }
      if (ht)
        for (int64_t bh = g0; bh < g1; ++bh) std::memcpy(ht + bh * KV, w + (bh - g0) * per, sizeof(float) * KV);
    });
    return;
  }
  Tensor states = Tensor::empty({BH, N + 1, K, V}), decay = Tensor::empty({BH, N, K});
  compute_states(gr, k, v, g, h0, states.f32(), decay.f32());
  for_chunks(gr, 2 * C * K + C * C, [&](int64_t bh, int64_t n, float* w) {
    chunk_output(gr, intra, q, k, v, g, bh, n, states.f32() + (bh * (N + 1) + n) * KV, o, w);
  });
  if (ht)
    for (int64_t bh = 0; bh < BH; ++bh)
      std::memcpy(ht + bh * KV, states.f32() + (bh * (N + 1) + N) * KV, sizeof(float) * KV);
}

void chunk_bwd(const Problem& p, const Intra& intra, const float* q, const float* k, const float* v, const float* g,
               const float* h0, const float* d_o, const float* d_ht, float* dq, float* dk, float* dv, float* dg,
               float* dh0) {
  Grid gr{p};
  const int64_t K = p.K, V = p.V, C = p.C, N = gr.N, KV = gr.KV, BH = p.B * p.H;
  if (N == 0) {
    if (dh0) for (int64_t i = 0; i < BH * KV; ++i) dh0[i] = d_ht ? d_ht[i] : 0.0f;
    return;
  }
  const Io io{q, k, v, g, d_o, dq, dk, dv, dg};
  if (by_heads(p)) {
    // Per head its states in order, then the chunks backwards with the running gradient dS of
    // the state leaving the current chunk.
    const int64_t per = (N + 2) * KV + N * K;  // states [N + 1, K, V], dS, decays [N, K] of a head
    for_head_groups(gr, per, KV + grads_workspace(C, K), [&](int64_t g0, int64_t g1, float* w) {
      float *U = w + kHeadGroup * per, *cw = U + KV;
      auto head = [&](int64_t bh) { return w + (bh - g0) * per; };
      for (int64_t bh = g0; bh < g1; ++bh) {
        float *St = head(bh), *dS = St + (N + 1) * KV;
        if (h0) std::memcpy(St, h0 + bh * KV, sizeof(float) * KV);
        else std::fill(St, St + KV, 0.0f);
        if (d_ht) std::memcpy(dS, d_ht + bh * KV, sizeof(float) * KV);
        else std::fill(dS, dS + KV, 0.0f);
      }
      for (int64_t n = 0; n < N; ++n)
        for (int64_t bh = g0; bh < g1; ++bh) {
          float *St = head(bh), *dcs = St + (N + 2) * KV;
          prefetch_chunk(gr, bh, n + 1, {{k, K}, {v, V}, {g, p.gate_width}});
          chunk_contribution(gr, k, v, g, bh, n, U, dcs + n * K, cw);
          advance_state(K, V, dcs + n * K, U, St + n * KV, St + (n + 1) * KV);
        }
      for (int64_t n = N - 1; n >= 0; --n)
        for (int64_t bh = g0; bh < g1; ++bh) {
          float *St = head(bh), *dS = St + (N + 1) * KV, *dcs = dS + KV;
          prefetch_chunk(gr, bh, n - 1,
                         {{q, K}, {k, K}, {v, V}, {g, p.gate_width}, {d_o, V}, {dq, K, true}, {dk, K, true},
                          {dv, V, true}, {dg, p.gate_width, true}});
          if (n > 0) queue_prefetch(St + (n - 1) * KV, 1, 0, KV);
          chunk_grads(gr, intra, io, bh, n, St + n * KV, dS, dcs + n * K, cw);
          // dL/d(state entering chunk n) = dc o dS + scale (Q o exp(G))^T dO
          for (int64_t kk = 0; kk < K; ++kk) {
#pragma omp simd
            for (int64_t vv = 0; vv < V; ++vv) dS[kk * V + vv] *= dcs[n * K + kk];
          }
          chunk_state_grad(gr, q, g, d_o, bh, n, 1.0f, dS, cw);
        }
      if (dh0)
        for (int64_t bh = g0; bh < g1; ++bh) std::memcpy(dh0 + bh * KV, head(bh) + (N + 1) * KV, sizeof(float) * KV);
    });
    return;
  }
  Tensor states = Tensor::empty({BH, N + 1, K, V}), decay = Tensor::empty({BH, N, K});
  Tensor dstates = Tensor::empty({BH, N + 1, K, V});
  float *St = states.f32(), *dSt = dstates.f32();
  compute_states(gr, k, v, g, h0, St, decay.f32());
  // Slot n of dstates first receives W_n = scale (Q o exp(G))^T dO of chunk n, then the reverse
  // scan turns it into dL/d(state entering chunk n) = decay_n o dS_{n+1} + W_n; slot N = d_ht.
  for_chunks(gr, 2 * C * K, [&](int64_t bh, int64_t n, float* w) {
    chunk_state_grad(gr, q, g, d_o, bh, n, 0.0f, dSt + (bh * (N + 1) + n) * KV, w);
  });
  parallel_for(BH, grain_for(2.0 * N * KV), [&](int64_t b0, int64_t b1) {
    for (int64_t bh = b0; bh < b1; ++bh) {
      float* dS = dSt + bh * (N + 1) * KV;
      if (d_ht) std::memcpy(dS + N * KV, d_ht + bh * KV, sizeof(float) * KV);
      else std::fill(dS + N * KV, dS + (N + 1) * KV, 0.0f);
      for (int64_t n = N - 1; n >= 0; --n) {
        const float* dc = decay.f32() + (bh * N + n) * K;
        for (int64_t kk = 0; kk < K; ++kk) {
#pragma omp simd
          for (int64_t vv = 0; vv < V; ++vv) dS[n * KV + kk * V + vv] += dc[kk] * dS[(n + 1) * KV + kk * V + vv];
        }
      }
      if (dh0) std::memcpy(dh0 + bh * KV, dS, sizeof(float) * KV);
    }
  });
  for_chunks(gr, grads_workspace(C, K), [&](int64_t bh, int64_t n, float* w) {
    chunk_grads(gr, intra, io, bh, n, St + (bh * (N + 1) + n) * KV, dSt + (bh * (N + 1) + n + 1) * KV,
                decay.f32() + (bh * N + n) * K, w);
  });
}

void recurrent_step(const Problem& p, const float* q, const float* k, const float* v, const float* g, float* state,
                    float* o) {
  const int64_t K = p.K, V = p.V, KV = K * V;
  parallel_for(p.B * p.H, grain_for(4.0 * p.T * KV), [&](int64_t b0, int64_t b1) {
    for (int64_t bh = b0; bh < b1; ++bh) {
      const int64_t b = bh / p.H, h = bh % p.H;
      float* S = state + bh * KV;
      for (int64_t t = 0; t < p.T; ++t) {
        const int64_t row = (b * p.T + t) * p.H + h;
        const float *qt = q + row * K, *kt = k + row * K, *vt = v + row * V;
        float* ot = o + row * V;
        for (int64_t kk = 0; kk < K; ++kk) {
          float a = p.gate_width == 0 ? 1.0f : exp_f32(g[row * p.gate_width + (p.gate_width == 1 ? 0 : kk)]);
          float* Sk = S + kk * V;
#pragma omp simd
          for (int64_t vv = 0; vv < V; ++vv) Sk[vv] = a * Sk[vv] + kt[kk] * vt[vv];
        }
        std::fill(ot, ot + V, 0.0f);
        for (int64_t kk = 0; kk < K; ++kk) {
          const float s = p.scale * qt[kk];
          const float* Sk = S + kk * V;
#pragma omp simd
          for (int64_t vv = 0; vv < V; ++vv) ot[vv] += s * Sk[vv];
        }
      }
    }
  });
}

}  // namespace speedlm::ops::linear_chunk
