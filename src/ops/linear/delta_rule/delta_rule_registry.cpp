// delta_rule's registry entry: the gated_delta_rule cases without the g input.
#include "ops/linear/gated_delta_rule/gated_delta_rule_registry.h"

namespace speedlm::ops {

OpEntry delta_rule_registry_entry() {
  OpEntry e;
  e.name = "delta_rule";
  e.cases = [] { return delta_rule_family_cases(false); };
  return e;
}

}  // namespace speedlm::ops
