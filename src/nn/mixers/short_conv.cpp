#include "nn/mixers/short_conv.h"

#include <cmath>

#include "autograd/elementwise_functions.h"
#include "autograd/recurrent_functions.h"
#include "nn/init.h"
#include "nn/mixers/recurrent_common.h"

namespace speedlm::nn {

ShortConv::ShortConv(int64_t channels, int64_t kernel) : channels_(channels), kernel_(kernel) {
  if (!enabled()) return;
  w_ = ag::Var(Tensor::zeros({channels, kernel}), true);
  b_ = ag::Var(Tensor::zeros({channels}), true);
}

void ShortConv::collect_params(const std::string& prefix, ParamList& out) {
  if (!enabled()) return;
  out.push_back({prefix + "conv.weight", &w_, false});
  out.push_back({prefix + "conv.bias", &b_, false});
}

void ShortConv::init(uint64_t seed, uint64_t stream) {
  if (!enabled()) return;
  init_normal(w_.value(), 1.0 / std::sqrt(static_cast<double>(kernel_)), seed, stream);
  b_.value().zero();
}

void ShortConv::add_state(RecurrentState& s, int64_t batch) const {
  if (enabled()) s.add("conv", {batch, kernel_ - 1, channels_});
}

std::vector<ag::Var> ShortConv::conv_qkv(const ag::Var& proj, const std::vector<int64_t>& widths, int64_t B,
                                         int64_t T, RecurrentState* state) const {
  SPEEDLM_ASSERT(widths.size() >= 3, "short conv: {} widths, q | k | v needs three", widths.size());
  const int64_t C = widths[0] + widths[1] + widths[2];
  SPEEDLM_ASSERT(!enabled() || C == channels_,
                 "short conv over {} channels given q | k | v widths that do not sum to it", channels_);
  std::vector<int64_t> outer = {C};
  outer.insert(outer.end(), widths.begin() + 3, widths.end());
  std::vector<ag::Var> parts = outer.size() == 1 ? std::vector<ag::Var>{proj} : ag::split_cols(proj, outer);
  if (!enabled()) return parts;
  const ops::CausalConv1dDims cd{B, T, channels_, kernel_};
  parts[0] = state ? ag::Var(conv_with_state(parts[0].value(), w_.value(), b_.value(), cd, {true},
                                             state->get("conv")))
                   : ag::causal_conv1d(parts[0], w_, b_, cd, {true});
  return parts;
}

std::vector<ag::Var> ShortConv::split_qkv(const ag::Var& proj, const std::vector<int64_t>& widths, int64_t B,
                                          int64_t T, RecurrentState* state) const {
  if (!enabled()) return ag::split_cols(proj, widths);
  std::vector<ag::Var> parts = conv_qkv(proj, widths, B, T, state);
  std::vector<ag::Var> out = ag::split_cols(parts[0], {widths[0], widths[1], widths[2]});
  out.insert(out.end(), parts.begin() + 1, parts.end());
  return out;
}

}  // namespace speedlm::nn
