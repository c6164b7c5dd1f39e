// A named trainable parameter. `decay` says whether AdamW applies weight decay to
// it (matrices yes; norms and embeddings no, by default).
#pragma once

#include <string>
#include <vector>

#include "autograd/var.h"

namespace speedlm::nn {

struct NamedParam {
  std::string name;
  ag::Var* var;
  bool decay;
};
using ParamList = std::vector<NamedParam>;

}  // namespace speedlm::nn
