// The interface every token mixer implements (attention now; linear attention,
// SSMs, ... later). A mixer maps [B*T, D] -> [B*T, D] and owns its decoding memory.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "autograd/var.h"
#include "core/rng.h"
#include "memory/mixer_state.h"
#include "nn/param.h"

namespace speedlm::nn {

struct InitSpec {
  double std = 0.02;      // linear layers
  double out_std = 0.02;  // projections into the residual stream
};

// What a layer hands on to later layers within one forward pass of the model. Only RWKV-7 uses
// it: every rwkv7 layer mixes the first rwkv7 layer's v into its own (the value residual). A
// pass-scoped object, made by the model per forward (training, prefill and decode alike), keeps
// that out of the decoding states (v_first is recomputed each pass) and out of the other mixers.
struct ForwardContext {
  ag::Var v_first;  // [B*T, D]: v of the first rwkv7 layer of this pass; undefined before it
};

class Mixer {
 public:
  virtual ~Mixer() = default;
  virtual const char* type() const = 0;
  virtual void collect_params(const std::string& prefix, ParamList& out) = 0;
  virtual void init(const InitSpec& spec, uint64_t seed) = 0;
  // Parallel form (training, prefill). x: [B*T, D]. With a state, the T tokens continue
  // after the state's tokens and are appended to it (inference only, no grad).
  virtual ag::Var forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) = 0;
  // forward as one layer of a model pass; mixers that need nothing from earlier layers keep this.
  virtual ag::Var forward_in_pass(const ag::Var& x, int64_t B, int64_t T, MixerState* state, ForwardContext&) {
    return forward(x, B, T, state);
  }
  // Decode one token per sequence. x: [B, D] -> [B, D].
  virtual Tensor step(const Tensor& x, MixerState& state) = 0;
  virtual std::unique_ptr<MixerState> make_state(int64_t batch) const = 0;
  virtual MemoryKind memory_kind() const = 0;
};

// Validates a mixer's config object (path names it in errors) for a model of width d_model.
Status validate_mixer_config(const nlohmann::json& cfg, const std::string& path, int64_t d_model);
// Builds a mixer from a config that validate_mixer_config accepted.
std::unique_ptr<Mixer> make_mixer(const nlohmann::json& cfg, int64_t d_model);

}  // namespace speedlm::nn
