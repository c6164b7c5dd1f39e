// FLA's short convolution (use_short_conv, conv_size W): a depthwise causal conv1d with SiLU over
// a layer's q | k | v projections, so that a token's query and key see its predecessors; it is
// what lets linear attention bind a token to the one before it and solve associative recall
// (Zoology, Based). W = 0 means no conv: no parameters, no state, the input passes through.
// Weights: conv.weight [C, W], conv.bias [C] (C = 2 H K + H V). Decode state slot "conv": the
// last W-1 inputs [B, W-1, C].
#pragma once

#include <string>
#include <vector>

#include "autograd/var.h"
#include "memory/recurrent_state.h"
#include "nn/param.h"

namespace speedlm::nn {

class ShortConv {
 public:
  ShortConv() = default;
  ShortConv(int64_t channels, int64_t kernel);
  bool enabled() const { return kernel_ > 0; }
  void collect_params(const std::string& prefix, ParamList& out);
  // weight ~ N(0, 1/W) from `stream`, bias 0.
  void init(uint64_t seed, uint64_t stream);
  void add_state(RecurrentState& s, int64_t batch) const;
  // proj: [B*T, sum(widths)] whose first three parts are q | k | v (C columns in all). Returns
  // ag::split_cols(proj, widths) with q, k and v passed through the conv; with a state
  // (inference only) the conv continues from its window and leaves the new one there.
  std::vector<ag::Var> split_qkv(const ag::Var& proj, const std::vector<int64_t>& widths, int64_t B, int64_t T,
                                 RecurrentState* state) const;
  // split_qkv with q | k | v left as one Var [B*T, C] (the conv's output): {qkv, parts after v...},
  // for a mixer that splits q, k and v itself.
  std::vector<ag::Var> conv_qkv(const ag::Var& proj, const std::vector<int64_t>& widths, int64_t B, int64_t T,
                                RecurrentState* state) const;

 private:
  int64_t channels_ = 0, kernel_ = 0;
  ag::Var w_, b_;
};

}  // namespace speedlm::nn
