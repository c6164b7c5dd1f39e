#include "nn/mixers/hymba.h"

#include "autograd/functions.h"
#include "io/json_fields.h"
#include "memory/composite_state.h"
#include "nn/init.h"

namespace speedlm::nn {

Result<HymbaMixerParams> HymbaMixerParams::parse(const nlohmann::json& cfg, const std::string& path,
                                                 int64_t d_model) {
  HymbaMixerParams p;
  JsonFields f(cfg, path);
  std::string type;
  SPEEDLM_TRY(f.get_string("type", type, {"hymba"}, true));
  SPEEDLM_TRY(f.get_object_list("branches", p.branches, true));
  for (size_t i = 0; i < p.branches.size(); ++i)
    SPEEDLM_TRY(validate_mixer_config(p.branches[i], fmt::format("{}[{}]", f.path_of("branches"), i), d_model));
  SPEEDLM_TRY(f.get_bool("out_proj", p.out_proj));
  SPEEDLM_TRY(f.get_float("norm_eps", p.norm_eps, 1e-12, 1.0));
  SPEEDLM_TRY(f.finish());
  return p;
}

HymbaMixer::HymbaMixer(const HymbaMixerParams& p, int64_t d_model) : p_(p) {
  for (const auto& b : p.branches) {
    branches_.push_back(make_mixer(b, d_model));
    norms_.emplace_back(Tensor::zeros({d_model}), true);
  }
  if (p.out_proj) w_out_ = ag::Var(Tensor::zeros({d_model, d_model}), true);
}

void HymbaMixer::collect_params(const std::string& prefix, ParamList& out) {
  for (size_t i = 0; i < branches_.size(); ++i) {
    branches_[i]->collect_params(fmt::format("{}branches.{}.", prefix, i), out);
    out.push_back({fmt::format("{}norms.{}.weight", prefix, i), &norms_[i], false});
  }
  if (w_out_.defined()) out.push_back({prefix + "w_out", &w_out_, true});
}

void HymbaMixer::init(const InitSpec& spec, uint64_t seed) {
  for (size_t i = 0; i < branches_.size(); ++i) {
    branches_[i]->init(spec, Rng(seed, i).next_u64());
    norms_[i].value().fill(1.0f / static_cast<float>(branches_.size()));
  }
  if (w_out_.defined()) init_normal(w_out_.value(), spec.out_std, seed, branches_.size());
}

ag::Var HymbaMixer::combine(const std::vector<ag::Var>& ys) {
  ag::Var sum;
  for (size_t i = 0; i < ys.size(); ++i) {
    ag::Var n = ag::rmsnorm(ys[i], norms_[i], static_cast<float>(p_.norm_eps));
    sum = i == 0 ? n : ag::add(sum, n);
  }
  return w_out_.defined() ? ag::linear(sum, w_out_) : sum;
}

ag::Var HymbaMixer::forward(const ag::Var& x, int64_t B, int64_t T, MixerState* state) {
  auto* cs = static_cast<CompositeState*>(state);
  std::vector<ag::Var> ys;
  for (size_t i = 0; i < branches_.size(); ++i) ys.push_back(branches_[i]->forward(x, B, T, cs ? &cs->branch(i) : nullptr));
  return combine(ys);
}

Tensor HymbaMixer::step(const Tensor& x, MixerState& state) {
  ag::NoGradGuard guard;
  auto& cs = static_cast<CompositeState&>(state);
  std::vector<ag::Var> ys;
  for (size_t i = 0; i < branches_.size(); ++i) ys.emplace_back(branches_[i]->step(x, cs.branch(i)));
  return combine(ys).value();
}

std::unique_ptr<MixerState> HymbaMixer::make_state(int64_t batch) const {
  std::vector<std::unique_ptr<MixerState>> states;
  for (const auto& b : branches_) states.push_back(b->make_state(batch));
  return std::make_unique<CompositeState>(std::move(states));
}

}  // namespace speedlm::nn
