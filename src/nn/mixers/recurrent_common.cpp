#include "nn/mixers/recurrent_common.h"

namespace speedlm::nn {

Tensor simple_gla_with_state(const Tensor& q, const Tensor& k, const Tensor& v, const float* g,
                             const ops::SimpleGlaDims& d, const ops::SimpleGlaParams& p, Tensor& S) {
  Tensor o = Tensor::empty({d.B * d.T, d.H * d.V});
  if (d.T <= kStepMaxTokens) {
    ops::simple_gla_step_fwd(p, d, q.f32(), k.f32(), v.f32(), g, S.f32(), o.f32());
  } else {
    Tensor h0 = S.clone();
    ops::simple_gla_chunk_fwd(p, d, q.f32(), k.f32(), v.f32(), g, h0.f32(), o.f32(), S.f32());
  }
  return o;
}

Tensor gla_with_state(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g, const ops::GlaDims& d,
                      const ops::GlaParams& p, Tensor& S) {
  Tensor o = Tensor::empty({d.B * d.T, d.H * d.V});
  if (d.T <= kStepMaxTokens) {
    ops::gla_step_fwd(p, d, q.f32(), k.f32(), v.f32(), g.f32(), S.f32(), o.f32());
  } else {
    Tensor h0 = S.clone();
    ops::gla_chunk_fwd(p, d, q.f32(), k.f32(), v.f32(), g.f32(), h0.f32(), o.f32(), S.f32());
  }
  return o;
}

Tensor conv_with_state(const Tensor& x, const Tensor& w, const Tensor& bias, const ops::CausalConv1dDims& d,
                       const ops::CausalConv1dParams& p, Tensor& window) {
  Tensor y = Tensor::empty(x.shape());
  ops::causal_conv1d_fast_fwd(p, d, x.f32(), w.f32(), bias.f32(), window.f32(), y.f32());
  ops::causal_conv1d_final_window(d, x.f32(), window.f32(), window.f32());
  return y;
}

}  // namespace speedlm::nn
