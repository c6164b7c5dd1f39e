// Reference GLA: the token recurrence (ops/linear/common/recurrence_ref.h) with a log gate
// per key channel; see README.md for the math.
#include <cmath>
#include <utility>

#include "ops/linear/common/recurrence_ref.h"
#include "ops/linear/gla/gla.h"

namespace speedlm::ops {

Status gla_check(const GlaParams& p, const GlaDims& d) {
  const std::pair<const char*, int64_t> dims[] = {{"batch", d.B}, {"heads", d.H}, {"key_dim", d.K}, {"value_dim", d.V}};
  for (const auto& [name, value] : dims)
    if (value < 1) return Status::errorf("gla", "{} = {}: must be >= 1", name, value);
  if (d.T < 0) return Status::errorf("gla", "T = {}: must be >= 0", d.T);
  if (p.chunk < 1) return Status::errorf("gla", "chunk = {}: must be >= 1", p.chunk);
  if (!std::isfinite(p.scale)) return Status::errorf("gla", "scale = {}: must be finite", p.scale);
  return Status::ok();
}

namespace {
linear_ref::Dims ref_dims(const GlaParams& p, const GlaDims& d) {
  double scale = p.scale != 0.0f ? static_cast<double>(p.scale) : 1.0 / std::sqrt(static_cast<double>(d.K));
  return {d.B, d.T, d.H, d.K, d.V, d.K, scale};
}
}  // namespace

template <typename T>
void gla_ref_fwd(const GlaParams& p, const GlaDims& d, const T* q, const T* k, const T* v,
                        const T* g, const T* h0, T* o, T* ht) {
  linear_ref::fwd(ref_dims(p, d), q, k, v, g, h0, o, ht);
}

template <typename T>
void gla_ref_bwd(const GlaParams& p, const GlaDims& d, const T* q, const T* k, const T* v,
                        const T* g, const T* h0, const T* d_o, const T* d_ht, T* dq, T* dk, T* dv, T* dg, T* dh0) {
  linear_ref::bwd(ref_dims(p, d), q, k, v, g, h0, d_o, d_ht, dq, dk, dv, dg, dh0);
}

template void gla_ref_fwd<double>(const GlaParams&, const GlaDims&, const double*, const double*,
                                         const double*, const double*, const double*, double*, double*);
template void gla_ref_bwd<double>(const GlaParams&, const GlaDims&, const double*, const double*,
                                         const double*, const double*, const double*, const double*, const double*,
                                         double*, double*, double*, double*, double*);
template void gla_ref_fwd<float>(const GlaParams&, const GlaDims&, const float*, const float*,
                                        const float*, const float*, const float*, float*, float*);

void gla_step_bwd(const GlaParams& p, const GlaDims& d, const float* q, const float* k,
                         const float* v, const float* g, const float* h0, const float* d_o, const float* d_ht,
                         float* dq, float* dk, float* dv, float* dg, float* dh0) {
  linear_ref::bwd(ref_dims(p, d), q, k, v, g, h0, d_o, d_ht, dq, dk, dv, dg, dh0);
}

}  // namespace speedlm::ops
