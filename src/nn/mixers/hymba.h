// An intra-layer hybrid, Hymba-style (Dong et al., arXiv 2411.13676; modeling_hymba.py in
// nvidia/Hymba-1.5B-Base): several mixers ("branches": attention heads, SSM or linear-attention
// heads) read the same input side by side; each branch's output is RMS-normalised with its
// own learned weight, the branches are averaged, and one output projection maps the result
// back (Hymba: out_proj((norm1(attn) + norm2(ssm)) / 2)).
// Config: {"type": "hymba", "branches": [<mixer config>, ...], "out_proj": true, "norm_eps": 1e-5}
// Differences from Hymba, by construction of this engine: each branch is a whole mixer, so it
// keeps its own output projection into d_model before the norm (Hymba's branches emit their
// inner width); the average's 1/n is folded into the norm weights (initialised to 1/n, so at
// init the layer computes exactly the mean of unit-weight norms). "out_proj": false drops the
// shared projection.
// Weights: branches.<i>.* (the branch's own), norms.<i>.weight [D], w_out [D, D].
// Decoding memory: a CompositeState holding each branch's state (bytes add up).
#pragma once

#include <vector>

#include "nn/mixer.h"

namespace speedlm::nn {

struct HymbaMixerParams {
  std::vector<nlohmann::json> branches;  // validated mixer configs
  bool out_proj = true;
  double norm_eps = 1e-5;
  static Result<HymbaMixerParams> parse(const nlohmann::json& cfg, const std::string& path, int64_t d_model);
};

class HymbaMixer final : public Mixer {
 public:
  HymbaMixer(const HymbaMixerParams& p, int64_t d_model);
  const char* type() const override { return "hymba"; }
  void collect_params(const std::string& prefix, ParamList& out) override;
  void init(const InitSpec& spec, uint64_t seed) override;
  ag::Var forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) override;
  Tensor step(const Tensor& x, MixerState& state) override;
  std::unique_ptr<MixerState> make_state(int64_t batch) const override;
  MemoryKind memory_kind() const override { return MemoryKind::Composite; }

 private:
  // Normalises, sums and projects the branch outputs ys (each [N, D]).
  ag::Var combine(const std::vector<ag::Var>& ys);
  HymbaMixerParams p_;
  std::vector<std::unique_ptr<Mixer>> branches_;
  std::vector<ag::Var> norms_;  // [D] each
  ag::Var w_out_;               // [D, D], undefined without out_proj
};

}  // namespace speedlm::nn
