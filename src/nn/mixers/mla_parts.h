// The differentiable pieces of the MLA mixer's expanded (training / prefill) form, and its
// absorbed attention over the latent cache (inference). Activations are [N, features] with
// N = B*T rows; per-head layouts [N, H, d] are the same memory as [N, H*d].
//   C = kv_lora_rank, Dn = qk_nope_head_dim, Dr = qk_rope_head_dim, Dv = v_head_dim,
//   Dq = Dn + Dr (the q.k head dim).
#pragma once

#include "autograd/var.h"
#include "ops/pos/rope/rope.h"

namespace speedlm::nn {

struct MlaDims {
  int64_t B = 1, T = 0, H = 1, C = 0, Dn = 0, Dr = 0, Dv = 0;
  int64_t Dq() const { return Dn + Dr; }
  int64_t N() const { return B * T; }
};

// kvr: [N, C + Dr] -> c_raw: [N, C] (the latent before its norm), k_pe: [N, Dr] with RoPE at
// pos: [B, T] i32 (one shared RoPE key per token).
struct Latent {
  ag::Var c_raw, k_pe;
};
Latent mla_split_latent(const ag::Var& kvr, const Tensor& pos, const MlaDims& d, const ops::RopeParams& rope);

// RoPE (backward: its inverse) on the q_pe part of every head of q: [N, H*Dq], in place.
void mla_rope_q(const MlaDims& d, const Tensor& pos, const ops::RopeParams& rope, float* q, bool backward);

// The expanded heads. q: [N, H*Dq] ([q_nope | q_pe] per head), kv: [N, H*(Dn + Dv)] ([k_nope | v]
// per head), k_pe: [N, Dr] (RoPE'd) ->
//   q: [N, H, Dq] = [q_nope | rope(q_pe)],  k: [N, H, Dq] = [k_nope | k_pe] (k_pe broadcast over
//   heads),  v: [N, H, Dq] = [v | 0] (zero-padded from Dv to Dq: the attention op needs one head
//   dim for q.k and v; the padded output columns are exactly 0 and mla_take_v drops them).
struct MlaHeads {
  ag::Var q, k, v;
};
MlaHeads mla_expand(const ag::Var& q, const ag::Var& kv, const ag::Var& k_pe, const Tensor& pos, const MlaDims& d,
                    const ops::RopeParams& rope);

// o: [N, H*Dq] -> [N, H*Dv]: the first Dv columns of each head.
ag::Var mla_take_v(const ag::Var& o, const MlaDims& d);

// Absorbed attention for inference (no grad) over cached latents of one sequence:
//   q: [T, H*Dq] (q_pe already RoPE'd), rows: [Tk, C + Dr] ([c_kv | k_pe] per token, the last T
//   of them the queries' own), w_ukv: [H*(Dn + Dv), C]  ->  out: [T, H*Dv]
// q~_h = W_UK^h^T q_nope_h, s = scale (q~_h . c + q_pe_h . k_pe), o_lat_h = sum p c, o_h = W_UV^h o_lat_h.
void mla_absorbed_attention(const MlaDims& d, int64_t Tk, float scale, const float* q, const float* rows,
                            const float* w_ukv, float* out);

}  // namespace speedlm::nn
