// Sparse mixture of experts: a router picks k of E SwiGLU experts per token, the
// chosen experts' outputs are summed with the router's weights (research/algorithms.md §13).
//   x:         [N, D]       tokens (N = B*T rows)
//   logits:    [N, E]       router logits (x W_r^T, computed by the caller)
//   bias:      [E]          selection bias (aux-loss-free balancing): picks experts, never weighs them
//   w_gate_up: [E, 2F, D]   expert e: gate | up projection (SwiGLU)
//   w_down:    [E, D, F]
//   y:         [N, D]       y_n = sum_j w_nj W2_e (silu(g) * u), [g | u] = W1_e x_n, e = expert_nj
// Router: scores s = softmax(logits) or sigmoid(logits); selection by s + bias, optionally
// limited to the best `topk_groups` of `groups` expert groups; weights = s of the chosen experts,
// optionally divided by their sum, times route_scale. A capacity factor drops the slots that
// overflow an expert, in token order. Backward: README.md.
#pragma once

#include <cstdint>
#include <vector>

#include "speedlm/tensor.h"

namespace speedlm::ops {

enum class RouterScore { Softmax, Sigmoid };

struct MoeParams {
  int64_t E = 8;  // routed experts
  int64_t k = 2;  // experts per token
  int64_t F = 0;  // expert hidden width
  RouterScore score = RouterScore::Softmax;
  bool renormalize = true;   // chosen weights divided by their sum
  float route_scale = 1.0f;  // chosen weights multiplied by this
  int64_t groups = 1;        // experts form `groups` groups of E / groups ...
  int64_t topk_groups = 1;   // ... and a token picks only from its best topk_groups groups
  // > 0: expert e keeps at most ceil(N k / E * capacity_factor) slots, the first in token order.
  double capacity_factor = 0.0;
  // bf16 expert GEMM operands, f32 accumulation (the bf16 training mode); the grouped form
  // reads it, the reference is exact.
  bool bf16 = false;
};

inline constexpr int64_t kMoeMaxExperts = 256;

Status moe_check(const MoeParams& p, int64_t N, int64_t D);
// Slots an expert keeps with a capacity factor (unlimited, N k, without).
int64_t moe_capacity(const MoeParams& p, int64_t N);

// ---- reference (the spec): a per-token loop over the chosen experts, double accumulators ----

// One token. logits, bias: [E] (bias may be null) -> expert: [k], weight: [k].
template <typename T>
void moe_route_token(const MoeParams& p, const T* logits, const T* bias, int32_t* expert, T* weight);
// d_weight: [k] -> d_logits: [E] (overwritten). The chosen experts are constants.
template <typename T>
void moe_route_token_bwd(const MoeParams& p, const T* logits, const int32_t* expert, const T* d_weight, T* d_logits);

template <typename T>
void moe_ref_fwd(const MoeParams& p, int64_t N, int64_t D, const T* x, const T* logits, const T* bias,
                 const T* w_gate_up, const T* w_down, T* y);
// dx, d_logits overwritten; d_gate_up, d_down overwritten.
template <typename T>
void moe_ref_bwd(const MoeParams& p, int64_t N, int64_t D, const T* x, const T* logits, const T* bias,
                 const T* w_gate_up, const T* w_down, const T* dy, T* dx, T* d_logits, T* d_gate_up, T* d_down);

// ---- routing tables: the slots (token n, choice j) grouped by expert ----

struct MoeRouting {
  int64_t N = 0, k = 0, E = 0;
  std::vector<int32_t> expert;  // [N*k] chosen expert of each slot
  std::vector<float> weight;    // [N*k] its weight
  std::vector<int64_t> routed;  // [E] slots routed to each expert (before capacity drops)
  std::vector<int64_t> kept;    // [E] slots each expert computes
  std::vector<int64_t> offset;  // [E+1] first grouped row of each expert (groups padded, see moe_padded_rows)
  std::vector<int64_t> row;     // [N*k] grouped row of each slot, -1 when dropped
  std::vector<int64_t> slot;    // [R] slot of each grouped row, -1 for padding
  int64_t dropped = 0;
  int64_t rows() const { return offset.empty() ? 0 : offset.back(); }
};

// Rows an expert group of m rows occupies: m up to 16, else m rounded up to 1/16 of its power of
// two (<= 6.25% padding). GEMM primitives are cached per shape: this bounds their number.
int64_t moe_padded_rows(int64_t m);

// Routes N tokens (threads over tokens) and groups the slots. logits: [N, E], bias: [E] or null.
MoeRouting moe_route(const MoeParams& p, int64_t N, const float* logits, const float* bias);
// d_weight: [N*k] -> d_logits: [N, E] (overwritten).
void moe_route_bwd(const MoeParams& p, const MoeRouting& r, const float* logits, const float* d_weight,
                   float* d_logits);

// ---- grouped expert compute: one GEMM per expert over its contiguous rows ----

struct MoeExpertWeights {
  const float* gate_up = nullptr;          // [E, 2F, D]
  const float* down = nullptr;             // [E, D, F]
  const uint16_t* gate_up_bf16 = nullptr;  // bf16 copies, required when p.bf16
  const uint16_t* down_bf16 = nullptr;
};

// What the backward reuses: R (D + 2F) floats. The gathered tokens and silu(g) * u are
// recomputed in the backward from x and hg (a copy and an elementwise pass, bit-identical):
// keeping them would add R (D + F) floats per layer for the whole backward.
struct MoeSaved {
  const float* x = nullptr;  // [N, D]  the forward's input; the caller keeps it alive
  Tensor hg;                 // [R, 2F] gate | up pre-activations
  Tensor yg;                 // [R, D]  expert outputs, unweighted
};

// y: [N, D] overwritten. saved may be null (inference).
void moe_grouped_fwd(const MoeParams& p, const MoeRouting& r, int64_t D, const float* x, const MoeExpertWeights& w,
                     float* y, MoeSaved* saved);
// dx: [N, D] and d_weight: [N*k] overwritten; d_gate_up, d_down accumulated (+=).
void moe_grouped_bwd(const MoeParams& p, const MoeRouting& r, int64_t D, const MoeExpertWeights& w,
                     const MoeSaved& saved, const float* dy, float* dx, float* d_weight, float* d_gate_up,
                     float* d_down);

// ---- balancing losses on the router logits ----

struct MoeBalanceParams {
  double aux_coef = 0.0;      // Switch load balancing: coef * E * sum_e f_e P_e over the batch
  double z_coef = 0.0;        // router z-loss: coef * mean_n logsumexp(logits_n)^2
  double seq_aux_coef = 0.0;  // the same as aux, per sequence of T tokens, averaged (DeepSeek-V3)
  int64_t T = 1;              // tokens per sequence (N % T == 0)
};

// logits: [N, E], expert: [N, k] (routed, before drops) -> terms: [3] = aux, z, seq_aux, each
// times its coefficient. The f32 form is the same per-token code (O(N E), no GEMM).
template <typename T>
void moe_balance_fwd(const MoeParams& p, const MoeBalanceParams& b, int64_t N, const T* logits,
                     const int32_t* expert, T* terms);
// d_terms: [3] -> d_logits: [N, E] (overwritten).
template <typename T>
void moe_balance_bwd(const MoeParams& p, const MoeBalanceParams& b, int64_t N, const T* logits,
                     const int32_t* expert, const T* d_terms, T* d_logits);

}  // namespace speedlm::ops
