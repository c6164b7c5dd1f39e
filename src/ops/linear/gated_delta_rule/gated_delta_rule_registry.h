// Registry cases shared by gated_delta_rule and delta_rule (the same kernels with g = 0).
#pragma once

#include <vector>

#include "ops/linear/gated_delta_rule/gated_delta_rule.h"
#include "ops/registry.h"

namespace speedlm::ops {

struct DeltaCaseSpec {
  bool gated;  // false: no g input (delta_rule)
  GatedDeltaRuleDims d;
  int64_t chunk;
  double beta_lo, beta_hi, g_lo, g_hi;  // Uniform ranges of beta and g
  bool extreme;
};

OpCase delta_rule_family_case(const DeltaCaseSpec& s);
std::vector<OpCase> delta_rule_family_cases(bool gated);

}  // namespace speedlm::ops
