#include "nn/moe.h"

#include <algorithm>

#include "autograd/functions.h"
#include "autograd/moe.h"
#include "nn/init.h"

namespace speedlm::nn {

ops::MoeParams MoeConfig::op_params() const {
  ops::MoeParams p;
  p.E = experts, p.k = top_k, p.F = hidden;
  p.score = router == "sigmoid" ? ops::RouterScore::Sigmoid : ops::RouterScore::Softmax;
  p.renormalize = renormalize, p.route_scale = static_cast<float>(route_scale);
  p.groups = groups, p.topk_groups = topk_groups, p.capacity_factor = capacity_factor;
  return p;
}

Result<MoeConfig> MoeConfig::parse(JsonFields& f) {
  MoeConfig c;
  SPEEDLM_TRY(f.get_int("experts", c.experts, 1, ops::kMoeMaxExperts, true));
  SPEEDLM_TRY(f.get_int("top_k", c.top_k, 1, c.experts, true));
  SPEEDLM_TRY(f.get_int("hidden", c.hidden, 1, 1 << 20, true));
  SPEEDLM_TRY(f.get_int("shared_experts", c.shared_experts, 0, 64));
  SPEEDLM_TRY(f.get_int("shared_hidden", c.shared_hidden, 1, 1 << 20));
  SPEEDLM_TRY(f.get_string("router", c.router, {"softmax", "sigmoid"}));
  SPEEDLM_TRY(f.get_bool("renormalize", c.renormalize));
  SPEEDLM_TRY(f.get_float("route_scale", c.route_scale, 1e-3, 1e3));
  SPEEDLM_TRY(f.get_int("groups", c.groups, 1, c.experts));
  if (c.experts % c.groups != 0)
    return f.error("groups", fmt::format(" = {}: must divide experts = {}", c.groups, c.experts));
  SPEEDLM_TRY(f.get_int("topk_groups", c.topk_groups, 1, c.groups));
  if (c.topk_groups * (c.experts / c.groups) < c.top_k)
    return f.error("topk_groups", fmt::format(" = {}: {} groups of {} experts hold fewer than top_k = {}",
                                              c.topk_groups, c.topk_groups, c.experts / c.groups, c.top_k));
  SPEEDLM_TRY(f.get_float("capacity_factor", c.capacity_factor, 0.0, 1e3));
  SPEEDLM_TRY(f.get_float("aux_loss_coef", c.aux_loss_coef, 0.0, 10.0));
  SPEEDLM_TRY(f.get_float("z_loss_coef", c.z_loss_coef, 0.0, 10.0));
  SPEEDLM_TRY(f.get_float("seq_aux_loss_coef", c.seq_aux_loss_coef, 0.0, 10.0));
  SPEEDLM_TRY(f.get_float("bias_update_rate", c.bias_update_rate, 0.0, 1.0));
  return c;
}

nlohmann::json MoeConfig::to_json() const {
  return {{"type", "moe"},
          {"experts", experts},
          {"top_k", top_k},
          {"hidden", hidden},
          {"shared_experts", shared_experts},
          {"shared_hidden", shared_hidden > 0 ? shared_hidden : hidden},
          {"router", router},
          {"renormalize", renormalize},
          {"route_scale", route_scale},
          {"groups", groups},
          {"topk_groups", topk_groups},
          {"capacity_factor", capacity_factor},
          {"aux_loss_coef", aux_loss_coef},
          {"z_loss_coef", z_loss_coef},
          {"seq_aux_loss_coef", seq_aux_loss_coef},
          {"bias_update_rate", bias_update_rate}};
}

int64_t MoeLoad::slots() const {
  int64_t s = 0;
  for (int64_t c : routed) s += c;
  return s;
}

double MoeLoad::fraction(int64_t e) const {
  int64_t s = slots();
  return s > 0 ? static_cast<double>(routed[e]) / static_cast<double>(s) : 0.0;
}

double MoeLoad::max_over_mean() const {
  int64_t s = slots();
  if (s == 0) return 0.0;
  return static_cast<double>(*std::max_element(routed.begin(), routed.end())) * static_cast<double>(routed.size()) /
         static_cast<double>(s);
}

double MoeLoad::dropped_fraction() const {
  int64_t s = slots();
  return s > 0 ? static_cast<double>(dropped) / static_cast<double>(s) : 0.0;
}

MoE::MoE(const MoeConfig& cfg, int64_t d_model) : cfg_(cfg), p_(cfg.op_params()), d_model_(d_model) {
  const int64_t E = cfg.experts, F = cfg.hidden, D = d_model;
  Status ok = ops::moe_check(p_, 0, D);
  SPEEDLM_ASSERT(ok.is_ok(), "MoE built from an unvalidated config: {}", ok.message());
  router_ = ag::Var(Tensor::zeros({E, D}), true);
  bias_ = ag::Var(Tensor::zeros({E}), false);
  w_gate_up_ = ag::Var(Tensor::zeros({E, 2 * F, D}), true);
  w_down_ = ag::Var(Tensor::zeros({E, D, F}), true);
  if (cfg.shared_experts > 0) {
    const int64_t S = cfg.shared_experts * (cfg.shared_hidden > 0 ? cfg.shared_hidden : F);
    shared_gate_up_ = ag::Var(Tensor::zeros({2 * S, D}), true);
    shared_down_ = ag::Var(Tensor::zeros({D, S}), true);
  }
  load_.routed.assign(E, 0);
  train_counts_.assign(E, 0);
}

void MoE::collect_params(const std::string& prefix, ParamList& out) {
  out.push_back({prefix + "router.weight", &router_, true});
  // Not trained by the optimizer (no gradient): listed so checkpoints carry it.
  out.push_back({prefix + "router.bias", &bias_, false});
  out.push_back({prefix + "experts.w_gate_up", &w_gate_up_, true});
  out.push_back({prefix + "experts.w_down", &w_down_, true});
  if (shared_gate_up_.defined()) {
    out.push_back({prefix + "shared.w_gate_up", &shared_gate_up_, true});
    out.push_back({prefix + "shared.w_down", &shared_down_, true});
  }
}

void MoE::init(const InitSpec& spec, uint64_t seed) {
  init_normal(router_.value(), spec.std, seed, 0);
  bias_.value().zero();
  init_normal(w_gate_up_.value(), spec.std, seed, 1);
  init_normal(w_down_.value(), spec.out_std, seed, 2);
  if (shared_gate_up_.defined()) {
    init_normal(shared_gate_up_.value(), spec.std, seed, 3);
    init_normal(shared_down_.value(), spec.out_std, seed, 4);
  }
}

ag::Var MoE::forward(const ag::Var& x, int64_t T) {
  ag::Var logits;
  {
    // The router stays in f32 in the bf16 mode: bf16 rounding would reshuffle near-tied choices.
    ag::MatmulPrecision saved = ag::matmul_precision();
    ag::set_matmul_precision(ag::MatmulPrecision::F32);
    logits = ag::linear(x, router_);
    ag::set_matmul_precision(saved);
  }
  ag::MoeResult r = ag::moe(x, logits, bias_.value(), w_gate_up_, w_down_, p_);
  for (int64_t e = 0; e < p_.E; ++e) load_.routed[e] += r.routed[e];
  load_.dropped += r.dropped;
  if (ag::grad_enabled()) {
    for (int64_t e = 0; e < p_.E; ++e) train_counts_[e] += r.routed[e];
    if (cfg_.aux_loss_coef > 0 || cfg_.z_loss_coef > 0 || cfg_.seq_aux_loss_coef > 0) {
      ops::MoeBalanceParams bp{cfg_.aux_loss_coef, cfg_.z_loss_coef, cfg_.seq_aux_loss_coef, T};
      double terms[3];
      ag::Var aux = ag::moe_balance(logits, r.expert, p_, bp, terms);
      aux_ = aux_.defined() ? ag::add(aux_, aux) : aux;
    }
  }
  ag::Var y = r.y;
  if (shared_gate_up_.defined())
    y = ag::add(y, ag::linear(ag::swiglu(ag::linear(x, shared_gate_up_)), shared_down_));
  return y;
}

ag::Var MoE::take_aux_loss() {
  ag::Var a = aux_;
  aux_ = ag::Var();
  return a;
}

MoeLoad MoE::take_load() {
  MoeLoad l = load_;
  load_.routed.assign(p_.E, 0);
  load_.dropped = 0;
  return l;
}

void MoE::update_bias() {
  int64_t total = 0;
  for (int64_t c : train_counts_) total += c;
  if (cfg_.bias_update_rate > 0 && total > 0) {
    const double mean = static_cast<double>(total) / static_cast<double>(p_.E);
    const float rate = static_cast<float>(cfg_.bias_update_rate);
    float* b = bias_.value().f32();
    for (int64_t e = 0; e < p_.E; ++e) {
      double c = static_cast<double>(train_counts_[e]);
      b[e] += c < mean ? rate : (c > mean ? -rate : 0.0f);
    }
    bias_.value_changed();
  }
  std::fill(train_counts_.begin(), train_counts_.end(), 0);
}

int64_t MoE::active_params() const {
  int64_t n = router_.value().numel() + (w_gate_up_.value().numel() + w_down_.value().numel()) / p_.E * p_.k;
  if (shared_gate_up_.defined()) n += shared_gate_up_.value().numel() + shared_down_.value().numel();
  return n;
}

}  // namespace speedlm::nn

namespace speedlm::nn {

int64_t MoE::num_params() const {
  int64_t n = router_.value().numel() + bias_.value().numel() + w_gate_up_.value().numel() + w_down_.value().numel();
  if (shared_gate_up_.defined()) n += shared_gate_up_.value().numel() + shared_down_.value().numel();
  return n;
}

}  // namespace speedlm::nn
