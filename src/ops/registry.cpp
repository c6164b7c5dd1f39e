#include "ops/registry.h"

#include <cmath>

namespace speedlm::ops {

// Each op folder defines its entry in <op>_registry.cpp.
OpEntry gemm_registry_entry();
OpEntry add_registry_entry();
OpEntry embedding_registry_entry();
OpEntry rmsnorm_registry_entry();
OpEntry swiglu_registry_entry();
OpEntry rope_registry_entry();
OpEntry cross_entropy_registry_entry();
OpEntry attention_registry_entry();
OpEntry causal_conv1d_registry_entry();
OpEntry simple_gla_registry_entry();
OpEntry gla_registry_entry();
OpEntry gated_delta_rule_registry_entry();
OpEntry delta_rule_registry_entry();
OpEntry selective_scan_registry_entry();
OpEntry rwkv7_registry_entry();

const std::vector<OpEntry>& registry() {
  static const std::vector<OpEntry> entries = {
      gemm_registry_entry(),
      add_registry_entry(),
      embedding_registry_entry(),
      rmsnorm_registry_entry(),
      swiglu_registry_entry(),
      rope_registry_entry(),
      cross_entropy_registry_entry(),
      attention_registry_entry(),
      causal_conv1d_registry_entry(),
      simple_gla_registry_entry(),
      gla_registry_entry(),
      gated_delta_rule_registry_entry(),
      delta_rule_registry_entry(),
      selective_scan_registry_entry(),
      rwkv7_registry_entry(),
  };
  return entries;
}

const OpEntry* find_op(const std::string& name) {
  for (const OpEntry& e : registry())
    if (e.name == name) return &e;
  return nullptr;
}

DBuf to_dbuf(const Tensor& t) {
  DBuf d(t.shape());
  for (int64_t i = 0; i < t.numel(); ++i)
    d.v[i] = t.dtype() == DType::I32 ? static_cast<double>(t.i32()[i]) : static_cast<double>(t.f32()[i]);
  return d;
}

Tensor to_tensor_f32(const DBuf& d) {
  Tensor t = Tensor::empty(d.shape);
  for (size_t i = 0; i < d.size(); ++i) t.f32()[i] = static_cast<float>(d.v[i]);
  return t;
}

Tensor to_tensor_i32(const DBuf& d) {
  Tensor t = Tensor::empty(d.shape, DType::I32);
  for (size_t i = 0; i < d.size(); ++i) t.i32()[i] = static_cast<int32_t>(std::lround(d.v[i]));
  return t;
}

std::vector<int32_t> to_i32_values(const DBuf& d) {
  std::vector<int32_t> out(d.size());
  for (size_t i = 0; i < d.size(); ++i) out[i] = static_cast<int32_t>(std::lround(d.v[i]));
  return out;
}

double rms_rel_error(const Tensor& a, const DBuf& b) {
  SPEEDLM_ASSERT(a.numel() == static_cast<int64_t>(b.size()), "{} vs {} elements", a.numel(), b.size());
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < b.size(); ++i) {
    double x = a.dtype() == DType::F32 ? a.f32()[i] : a.i32()[i];
    num += (x - b.v[i]) * (x - b.v[i]);
    den += b.v[i] * b.v[i];
  }
  if (!std::isfinite(num)) return INFINITY;
  return std::sqrt(num) / (std::sqrt(den) + 1e-12);
}

}  // namespace speedlm::ops
