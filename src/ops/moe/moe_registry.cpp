#include "ops/moe/moe.h"
#include "ops/registry.h"

namespace speedlm::ops {

namespace {

std::string params_label(const MoeParams& p) {
  return fmt::format("{} E={} k={} F={}{}{}{}{}", p.score == RouterScore::Softmax ? "softmax" : "sigmoid", p.E, p.k,
                     p.F, p.renormalize ? " renorm" : "", p.groups > 1 ? fmt::format(" groups={}/{}", p.topk_groups, p.groups) : "",
                     p.route_scale != 1.0f ? fmt::format(" scale={}", p.route_scale) : "",
                     p.capacity_factor > 0 ? fmt::format(" capacity={}", p.capacity_factor) : "");
}

// Inputs: x, logits, bias (selection only, not differentiable), w_gate_up, w_down. Output: y.
OpCase moe_case(const MoeParams& p, int64_t N, int64_t D, double logit_std = 1.0, bool extreme = false) {
  const int64_t E = p.E, F = p.F;
  OpCase c;
  c.label = fmt::format("{} N={} D={} logit_std={}", params_label(p), N, D, logit_std);
  c.extreme = extreme;
  const Shape xs{N, D}, ls{N, E}, bs{E}, w1s{E, 2 * F, D}, w2s{E, D, F};
  InputSpec bias{"bias", bs, InputSpec::Kind::Normal, 0.0, 0.2};
  bias.differentiable = false;
  c.inputs = {{"x", xs},
              {"logits", ls, InputSpec::Kind::Normal, 0.0, logit_std},
              bias,
              {"w_gate_up", w1s, InputSpec::Kind::Normal, 0.0, 1.0 / std::sqrt(static_cast<double>(D))},
              {"w_down", w2s, InputSpec::Kind::Normal, 0.0, 1.0 / std::sqrt(static_cast<double>(F))}};
  c.ref_fwd = [=](const DBufs& in) {
    DBuf y(xs);
    moe_ref_fwd<double>(p, N, D, in[0].v.data(), in[1].v.data(), in[2].v.data(), in[3].v.data(), in[4].v.data(),
                        y.v.data());
    return DBufs{y};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBuf dx(xs), dl(ls), d1(w1s), d2(w2s);
    moe_ref_bwd<double>(p, N, D, in[0].v.data(), in[1].v.data(), in[2].v.data(), in[3].v.data(), in[4].v.data(),
                        dout[0].v.data(), dx.v.data(), dl.v.data(), d1.v.data(), d2.v.data());
    return DBufs{dx, dl, DBuf(), d1, d2};
  };
  OpForm f;
  f.name = "grouped";
  auto run = [=](const Tensors& in, MoeSaved* saved, MoeRouting& r) {
    r = moe_route(p, N, in[1].f32(), in[2].f32());
    Tensor y = Tensor::empty(xs);
    moe_grouped_fwd(p, r, D, in[0].f32(), MoeExpertWeights{in[3].f32(), in[4].f32()}, y.f32(), saved);
    return y;
  };
  f.fwd = [=](const Tensors& in) {
    MoeRouting r;
    return Tensors{run(in, nullptr, r)};
  };
  f.bwd = [=](const Tensors& in, const Tensors& dout) {
    MoeRouting r;
    MoeSaved saved;
    run(in, &saved, r);
    Tensor dx = Tensor::empty(xs), dl = Tensor::empty(ls), d1 = Tensor::zeros(w1s), d2 = Tensor::zeros(w2s);
    Tensor dw = Tensor::empty({N * p.k});
    moe_grouped_bwd(p, r, D, MoeExpertWeights{in[3].f32(), in[4].f32()}, saved, dout[0].f32(), dx.f32(), dw.f32(),
                    d1.f32(), d2.f32());
    moe_route_bwd(p, r, in[1].f32(), dw.f32(), dl.f32());
    return Tensors{dx, dl, Tensor(), d1, d2};
  };
  c.forms.push_back(f);
  return c;
}

// Inputs: logits, bias (selection only). Output: the three loss terms [3].
OpCase balance_case(const MoeParams& p, const MoeBalanceParams& b, int64_t N, double logit_std = 1.0,
                    bool extreme = false) {
  OpCase c;
  c.label = fmt::format("{} N={} T={} logit_std={}", params_label(p), N, b.T, logit_std);
  c.extreme = extreme;
  const Shape ls{N, p.E};
  InputSpec bias{"bias", {p.E}, InputSpec::Kind::Normal, 0.0, 0.2};
  bias.differentiable = false;
  c.inputs = {{"logits", ls, InputSpec::Kind::Normal, 0.0, logit_std}, bias};
  auto route = [=](const DBufs& in) {
    std::vector<int32_t> expert(N * p.k);
    std::vector<double> weight(p.k);
    for (int64_t n = 0; n < N; ++n)
      moe_route_token<double>(p, in[0].v.data() + n * p.E, in[1].v.data(), expert.data() + n * p.k, weight.data());
    return expert;
  };
  c.ref_fwd = [=](const DBufs& in) {
    DBuf terms({3});
    moe_balance_fwd<double>(p, b, N, in[0].v.data(), route(in).data(), terms.v.data());
    return DBufs{terms};
  };
  c.ref_bwd = [=](const DBufs& in, const DBufs& dout) {
    DBuf dl(ls);
    moe_balance_bwd<double>(p, b, N, in[0].v.data(), route(in).data(), dout[0].v.data(), dl.v.data());
    return DBufs{dl, DBuf()};
  };
  OpForm f;
  f.name = "fast";
  f.fwd = [=](const Tensors& in) {
    MoeRouting r = moe_route(p, N, in[0].f32(), in[1].f32());
    Tensor terms = Tensor::empty({3});
    moe_balance_fwd<float>(p, b, N, in[0].f32(), r.expert.data(), terms.f32());
    return Tensors{terms};
  };
  f.bwd = [=](const Tensors& in, const Tensors& dout) {
    MoeRouting r = moe_route(p, N, in[0].f32(), in[1].f32());
    Tensor dl = Tensor::empty(ls);
    moe_balance_bwd<float>(p, b, N, in[0].f32(), r.expert.data(), dout[0].f32(), dl.f32());
    return Tensors{dl, Tensor()};
  };
  c.forms.push_back(f);
  return c;
}

MoeParams softmax_params(int64_t E, int64_t k, int64_t F, bool renorm = true, double capacity = 0.0) {
  MoeParams p;
  p.E = E, p.k = k, p.F = F, p.renormalize = renorm, p.capacity_factor = capacity;
  return p;
}

MoeParams sigmoid_params(int64_t E, int64_t k, int64_t F, int64_t groups, int64_t topk_groups, float scale) {
  MoeParams p;
  p.E = E, p.k = k, p.F = F, p.score = RouterScore::Sigmoid, p.groups = groups, p.topk_groups = topk_groups;
  p.route_scale = scale;
  return p;
}

}  // namespace

OpEntry moe_registry_entry() {
  OpEntry e;
  e.name = "moe";
  e.cases = [] {
    return std::vector<OpCase>{
        moe_case(softmax_params(8, 2, 12), 65, 16),                      // Mixtral-like
        moe_case(softmax_params(4, 1, 7, false), 1, 9),                  // one token, no renormalisation
        moe_case(softmax_params(3, 3, 5), 5, 8),                         // every expert chosen
        moe_case(sigmoid_params(16, 4, 9, 4, 2, 2.5f), 63, 17),          // DeepSeek-like, group-limited
        moe_case(sigmoid_params(8, 2, 6, 1, 1, 1.0f), 64, 12),
        moe_case(softmax_params(4, 2, 8, true, 0.5), 64, 8),             // capacity: half the slots drop
        moe_case(softmax_params(8, 2, 8, true, 1.25), 500, 8),
        moe_case(softmax_params(8, 2, 8), 70, 16, 10.0, true),           // near one-hot router
        moe_case(sigmoid_params(8, 2, 8, 2, 1, 1.0f), 70, 16, 3.0, true),  // saturating sigmoid scores
        moe_case(softmax_params(8, 2, 8), 0, 16, 1.0, true),             // no tokens
    };
  };
  return e;
}

OpEntry moe_balance_registry_entry() {
  OpEntry e;
  e.name = "moe_balance";
  e.cases = [] {
    MoeBalanceParams b{1.0, 1.0, 1.0, 16};
    MoeBalanceParams one_seq{1.0, 1.0, 1.0, 7};
    return std::vector<OpCase>{
        balance_case(softmax_params(8, 2, 1), b, 64),
        balance_case(softmax_params(4, 1, 1, false), one_seq, 7),
        balance_case(sigmoid_params(16, 4, 1, 4, 2, 2.5f), b, 48),
        balance_case(softmax_params(8, 2, 1), b, 64, 10.0, true),
        balance_case(sigmoid_params(8, 2, 1, 1, 1, 1.0f), b, 32, 3.0, true),
    };
  };
  return e;
}

}  // namespace speedlm::ops
