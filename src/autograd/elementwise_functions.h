// Small differentiable reshapes and element-wise maps the recurrent mixers compose
// (gates, feature maps, output gates). Activations are [N, F] with N = B*T.
#pragma once

#include <vector>

#include "autograd/var.h"

namespace speedlm::ag {

// The same values under another shape (same numel); shares storage.
Var reshape(const Var& x, Shape shape);
// x: [N, sum(widths)] -> one [N, w_i] per width, in order.
std::vector<Var> split_cols(const Var& x, const std::vector<int64_t>& widths);
// a o silu(b).  a, b: [N, F]
Var mul_silu(const Var& a, const Var& b);
// logsigmoid(x + bias) * inv_norm: a log gate <= 0.  x: [N, F]  bias: [F]
Var log_sigmoid_gate(const Var& x, const Var& bias, float inv_norm);
// elu(x) + 1 (a positive feature map).
Var elu_plus_one(const Var& x);
// relu(x)^2 (the RWKV channel mix's activation).
Var relu_square(const Var& x);
// v: [N, H*V] -> [N, H*(V+1)], a 1 appended to each head's values.
Var append_ones(const Var& v, int64_t H, int64_t V);
// o: [N, H*(V+1)] -> [N, H*V]: each head's first V values over (its last value + eps).
Var divide_by_last(const Var& o, int64_t H, int64_t V, float eps);

}  // namespace speedlm::ag
