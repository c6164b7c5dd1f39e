#include "arena/speed.h"

#include <algorithm>
#include <chrono>

#include "core/rng.h"

namespace speedlm::arena {

std::vector<ArenaSpeed> measure_speed(LanguageModel& model, const std::vector<int64_t>& contexts,
                                      int64_t decode_tokens, uint64_t seed) {
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  const int64_t V = model.config().vocab_size;
  std::vector<ArenaSpeed> out;
  Rng rng(seed, 7);
  for (int64_t L : contexts) {
    Tensor ids = Tensor::empty({1, L}, DType::I32);
    for (int64_t i = 0; i < L; ++i) ids.i32()[i] = static_cast<int32_t>(rng.below(V));
    ModelState state = model.make_state(1);
    ArenaSpeed s;
    s.context = L;
    Clock::time_point t0 = Clock::now();
    Tensor logits = model.forward_last(ids, state);
    s.prefill_tokens_per_s = static_cast<double>(L) / since(t0);
    s.state_bytes = state.bytes();
    auto next = [&] {
      int32_t tok = static_cast<int32_t>(std::max_element(logits.f32(), logits.f32() + V) - logits.f32());
      logits = model.forward_last(Tensor::from_i32({1, 1}, {tok}), state);
    };
    next();  // creates the single-token GEMM primitives
    t0 = Clock::now();
    for (int64_t i = 0; i < decode_tokens; ++i) next();
    s.decode_tokens_per_s = static_cast<double>(decode_tokens) / since(t0);
    out.push_back(s);
  }
  return out;
}

}  // namespace speedlm::arena
