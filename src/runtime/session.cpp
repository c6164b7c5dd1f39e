#include "runtime/session.h"

namespace speedlm {

Tensor Session::prefill(const std::vector<int32_t>& tokens) {
  SPEEDLM_ASSERT(!tokens.empty(), "prefill of no tokens");
  Tensor ids = Tensor::from_i32({1, static_cast<int64_t>(tokens.size())}, tokens);
  history_.insert(history_.end(), tokens.begin(), tokens.end());
  return model_.forward_last(ids, state_).reshape({model_.config().vocab_size});
}

Tensor Session::decode(int32_t token) { return prefill({token}); }

}  // namespace speedlm
