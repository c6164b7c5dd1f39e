// Reference simple GLA: the token recurrence (ops/linear/common/recurrence_ref.h) with one
// log gate per head; see README.md for the math.
#include <cmath>
#include <utility>

#include "ops/linear/common/recurrence_ref.h"
#include "ops/linear/simple_gla/simple_gla.h"

namespace speedlm::ops {

Status simple_gla_check(const SimpleGlaParams& p, const SimpleGlaDims& d) {
  const std::pair<const char*, int64_t> dims[] = {{"batch", d.B}, {"heads", d.H}, {"key_dim", d.K}, {"value_dim", d.V}};
  for (const auto& [name, value] : dims)
    if (value < 1) return Status::errorf("simple_gla", "{} = {}: must be >= 1", name, value);
  if (d.T < 0) return Status::errorf("simple_gla", "T = {}: must be >= 0", d.T);
  if (p.chunk < 1) return Status::errorf("simple_gla", "chunk = {}: must be >= 1", p.chunk);
  if (!std::isfinite(p.scale)) return Status::errorf("simple_gla", "scale = {}: must be finite", p.scale);
  return Status::ok();
}

namespace {
linear_ref::Dims ref_dims(const SimpleGlaParams& p, const SimpleGlaDims& d, bool gated) {
  double scale = p.scale != 0.0f ? static_cast<double>(p.scale) : 1.0 / std::sqrt(static_cast<double>(d.K));
  return {d.B, d.T, d.H, d.K, d.V, gated ? 1 : 0, scale};
}
}  // namespace

template <typename T>
void simple_gla_ref_fwd(const SimpleGlaParams& p, const SimpleGlaDims& d, const T* q, const T* k, const T* v,
                        const T* g, const T* h0, T* o, T* ht) {
  linear_ref::fwd(ref_dims(p, d, g != nullptr), q, k, v, g, h0, o, ht);
}

template <typename T>
void simple_gla_ref_bwd(const SimpleGlaParams& p, const SimpleGlaDims& d, const T* q, const T* k, const T* v,
                        const T* g, const T* h0, const T* d_o, const T* d_ht, T* dq, T* dk, T* dv, T* dg, T* dh0) {
  linear_ref::bwd(ref_dims(p, d, g != nullptr), q, k, v, g, h0, d_o, d_ht, dq, dk, dv, dg, dh0);
}

template void simple_gla_ref_fwd<double>(const SimpleGlaParams&, const SimpleGlaDims&, const double*, const double*,
                                         const double*, const double*, const double*, double*, double*);
template void simple_gla_ref_bwd<double>(const SimpleGlaParams&, const SimpleGlaDims&, const double*, const double*,
                                         const double*, const double*, const double*, const double*, const double*,
                                         double*, double*, double*, double*, double*);
template void simple_gla_ref_fwd<float>(const SimpleGlaParams&, const SimpleGlaDims&, const float*, const float*,
                                        const float*, const float*, const float*, float*, float*);

void simple_gla_step_bwd(const SimpleGlaParams& p, const SimpleGlaDims& d, const float* q, const float* k,
                         const float* v, const float* g, const float* h0, const float* d_o, const float* d_ht,
                         float* dq, float* dk, float* dv, float* dg, float* dh0) {
  linear_ref::bwd(ref_dims(p, d, g != nullptr), q, k, v, g, h0, d_o, d_ht, dq, dk, dv, dg, dh0);
}

}  // namespace speedlm::ops
