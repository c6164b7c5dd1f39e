// The DESIGN.md op checks, generated for every entry of the op registry.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "ops/registry.h"

namespace speedlm::ops {
namespace {

Tensors make_inputs(const OpCase& c, uint64_t seed) {
  Rng rng(seed);
  Tensors out;
  for (const InputSpec& s : c.inputs) {
    if (s.kind == InputSpec::Kind::Index) {
      Tensor t = Tensor::empty(s.shape, DType::I32);
      for (int64_t i = 0; i < t.numel(); ++i)
        t.i32()[i] = rng.uniform() < s.ignore_fraction ? s.ignore_value : static_cast<int32_t>(rng.below(static_cast<uint64_t>(s.b)));
      out.push_back(t);
      continue;
    }
    Tensor t = Tensor::empty(s.shape);
    for (int64_t i = 0; i < t.numel(); ++i)
      t.f32()[i] = s.kind == InputSpec::Kind::Normal ? static_cast<float>(s.a + s.b * rng.normal())
                                                     : static_cast<float>(s.a + (s.b - s.a) * rng.uniform());
    out.push_back(t);
  }
  return out;
}

DBufs to_dbufs(const Tensors& ts) {
  DBufs out;
  for (const Tensor& t : ts) out.push_back(to_dbuf(t));
  return out;
}

// Random output cotangents (values representable in f32, so both sides see the same numbers).
DBufs make_cotangents(const DBufs& outs, uint64_t seed) {
  Rng rng(seed, 7);
  DBufs d;
  for (const DBuf& o : outs) {
    DBuf g(o.shape);
    for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<float>(rng.normal());
    d.push_back(g);
  }
  return d;
}

Tensors to_tensors(const DBufs& ds) {
  Tensors out;
  for (const DBuf& d : ds) out.push_back(to_tensor_f32(d));
  return out;
}

bool all_finite(const Tensor& t) {
  if (!t.defined() || t.dtype() != DType::F32) return true;
  for (int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(t.f32()[i])) return false;
  return true;
}

double weighted_sum(const DBufs& outs, const DBufs& w) {
  double s = 0.0;
  for (size_t o = 0; o < outs.size(); ++o)
    for (size_t i = 0; i < outs[o].size(); ++i) s += outs[o][i] * w[o][i];
  return s;
}

class OpChecks : public ::testing::TestWithParam<std::string> {
 protected:
  const OpEntry& entry() const { return *find_op(GetParam()); }
};

TEST_P(OpChecks, RefBackwardMatchesFiniteDifferences) {
  const OpEntry& e = entry();
  uint64_t seed = 1;
  for (const OpCase& c : e.cases()) {
    SCOPED_TRACE(c.label);
    DBufs in = to_dbufs(make_inputs(c, seed++));
    DBufs w = make_cotangents(c.ref_fwd(in), seed);
    DBufs grads = c.ref_bwd(in, w);
    ASSERT_EQ(grads.size(), in.size());
    Rng pick(seed, 3);
    for (size_t k = 0; k < in.size(); ++k) {
      if (!c.inputs[k].differentiable || c.inputs[k].kind == InputSpec::Kind::Index) continue;
      SCOPED_TRACE("d_" + c.inputs[k].name);
      ASSERT_EQ(grads[k].size(), in[k].size());
      size_t n = in[k].size(), checks = std::min<size_t>(n, 96);
      double num = 0.0, den = 0.0;
      for (size_t s = 0; s < checks; ++s) {
        size_t i = checks == n ? s : static_cast<size_t>(pick.below(n));
        // The step is relative for |x| > 1, so extreme-magnitude inputs get a step they can resolve;
        // dividing by the represented difference removes the rounding of x +- h.
        DBufs plus = in, minus = in;
        double h = e.fd_eps * std::max(1.0, std::abs(in[k][i]));
        plus[k][i] += h;
        minus[k][i] -= h;
        double fd = (weighted_sum(c.ref_fwd(plus), w) - weighted_sum(c.ref_fwd(minus), w)) / (plus[k][i] - minus[k][i]);
        num += (fd - grads[k][i]) * (fd - grads[k][i]);
        den += fd * fd;
      }
      EXPECT_LE(std::sqrt(num), e.fd_tol * (std::sqrt(den) + 1e-3)) << "reference backward disagrees with finite differences";
    }
  }
}

TEST_P(OpChecks, FastForwardAndBackwardMatchRef) {
  const OpEntry& e = entry();
  uint64_t seed = 100;
  for (const OpCase& c : e.cases()) {
    SCOPED_TRACE(c.label);
    Tensors in = make_inputs(c, seed++);
    DBufs din = to_dbufs(in);
    DBufs ref_out = c.ref_fwd(din);
    DBufs w = make_cotangents(ref_out, seed);
    DBufs ref_grads = c.ref_bwd(din, w);
    Tensors d_out = to_tensors(w);
    ASSERT_FALSE(c.forms.empty()) << "an op needs at least one fast form";
    for (const OpForm& f : c.forms) {
      SCOPED_TRACE("form " + f.name);
      Tensors out = f.fwd(in);
      ASSERT_EQ(out.size(), ref_out.size());
      for (size_t o = 0; o < out.size(); ++o) {
        EXPECT_TRUE(all_finite(out[o])) << "output " << o;
        EXPECT_LE(rms_rel_error(out[o], ref_out[o]), e.fwd_tol) << "output " << o;
      }
      Tensors grads = f.bwd(in, d_out);
      ASSERT_EQ(grads.size(), in.size());
      for (size_t k = 0; k < in.size(); ++k) {
        if (!c.inputs[k].differentiable || c.inputs[k].kind == InputSpec::Kind::Index) continue;
        ASSERT_TRUE(grads[k].defined()) << "d_" << c.inputs[k].name;
        EXPECT_TRUE(all_finite(grads[k])) << "d_" << c.inputs[k].name;
        EXPECT_LE(rms_rel_error(grads[k], ref_grads[k]), e.bwd_tol) << "d_" << c.inputs[k].name;
      }
    }
  }
}

TEST_P(OpChecks, PoisonedMemoryLeavesNoNaN) {
  const OpEntry& e = entry();
  uint64_t seed = 500;
  for (const OpCase& c : e.cases()) {
    if (c.extreme) continue;
    SCOPED_TRACE(c.label);
    Tensors in = make_inputs(c, seed++);
    for (const OpForm& f : c.forms) {
      SCOPED_TRACE("form " + f.name);
      set_poison_allocations(true);
      Tensors out = f.fwd(in);
      Tensors d_out;
      for (const Tensor& o : out) d_out.push_back(Tensor::full(o.shape(), 0.5f));
      Tensors grads = f.bwd(in, d_out);
      set_poison_allocations(false);
      for (const Tensor& o : out) EXPECT_TRUE(all_finite(o));
      for (const Tensor& g : grads) EXPECT_TRUE(all_finite(g));
    }
  }
}

TEST_P(OpChecks, HasExtremeOrEdgeCases) {
  // Check 7 runs through the two tests above: an entry's cases must include extreme or edge inputs.
  bool any = false;
  for (const OpCase& c : entry().cases()) any = any || c.extreme;
  if (GetParam() == "gemm") GTEST_SKIP() << "gemm is linear: no numerically extreme regime";
  EXPECT_TRUE(any) << "registry entry lists no extreme cases";
}

std::vector<std::string> op_names() {
  std::vector<std::string> names;
  for (const OpEntry& e : registry()) names.push_back(e.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Registry, OpChecks, ::testing::ValuesIn(op_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace speedlm::ops
