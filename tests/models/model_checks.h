// Helpers every model test shares: random token ids, prefill == step-by-step decode, the
// parameter-gradient check against central finite differences of the loss.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/functions.h"
#include "core/rng.h"
#include "models/lm.h"
#include "train/adamw.h"

namespace speedlm::testing {

inline Tensor random_ids(int64_t B, int64_t T, int64_t V, uint64_t seed) {
  Rng rng(seed);
  Tensor t = Tensor::empty({B, T}, DType::I32);
  for (int64_t i = 0; i < t.numel(); ++i) t.i32()[i] = static_cast<int32_t>(rng.below(V));
  return t;
}

inline double rms_rel(const float* a, const float* ref, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) num += (a[i] - ref[i]) * (a[i] - ref[i]), den += ref[i] * ref[i];
  return std::sqrt(num) / (std::sqrt(den) + 1e-30);
}

constexpr uint64_t kPrefillIdsSeed = 3;

// The logits of one pass over random [B, T] ids (the parallel/chunk forms, no state) equal those
// of feeding the same ids one token at a time through a decoding state (the step forms), to
// RMS-relative tol(b, t) per position.
template <class Tol>
void expect_prefill_equals_decode_within(LanguageModel& model, int64_t B, int64_t T, const Tol& tol) {
  const int64_t V = model.config().vocab_size;
  Tensor ids = random_ids(B, T, V, kPrefillIdsSeed);
  ag::NoGradGuard guard;
  Tensor full = model.forward(ids).value();  // [B*T, V]
  ModelState state = model.make_state(B);
  for (int64_t t = 0; t < T; ++t) {
    Tensor step_ids = Tensor::empty({B, 1}, DType::I32);
    for (int64_t b = 0; b < B; ++b) step_ids.i32()[b] = ids.i32()[b * T + t];
    Tensor logits = model.forward_last(step_ids, state);  // [B, V]
    for (int64_t b = 0; b < B; ++b)
      EXPECT_LE(rms_rel(logits.f32() + b * V, full.f32() + (b * T + t) * V, V), tol(b, t)) << "b=" << b << " t=" << t;
  }
  EXPECT_EQ(state.length(), T);
}

// The same with one bound for every position: 1e-5 for exact (f32) decoding memory.
inline void expect_prefill_equals_decode(LanguageModel& model, int64_t B, int64_t T, double tol = 1e-5) {
  expect_prefill_equals_decode_within(model, B, T, [tol](int64_t, int64_t) { return tol; });
}

// Per position of that [B, T] prefill, the RMS-relative change of its logits when every weight
// moves by one ulp (w *= 1 +- 2^-23, random signs): how far rounding alone can carry
// two algebraically equal forms of this model apart there. It is ~1e-7-1e-6 where the logits are
// well conditioned, larger where they sit on a cancellation (e.g. a normed linear-attention head
// at the first token, whose output is q.k v of that one token: a small q.k, normalised, keeps
// the rounding of its terms). [B*T]
inline std::vector<double> rounding_sensitivity(LanguageModel& model, int64_t B, int64_t T) {
  const int64_t V = model.config().vocab_size;
  Tensor ids = random_ids(B, T, V, kPrefillIdsSeed);
  ag::NoGradGuard guard;
  Tensor base = model.forward(ids).value();  // [B*T, V]
  std::vector<Tensor> saved;
  Rng sign(77);
  for (const auto& p : model.params()) {
    Tensor& w = p.var->value();
    saved.push_back(w.clone());
    for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] *= sign.uniform() < 0.5f ? 1.0f + 0x1p-23f : 1.0f - 0x1p-23f;
  }
  Tensor moved = model.forward(ids).value();
  for (size_t i = 0; i < saved.size(); ++i) model.params()[i].var->value().copy_from(saved[i]);
  std::vector<double> out(static_cast<size_t>(B * T));
  for (int64_t r = 0; r < B * T; ++r) out[static_cast<size_t>(r)] = rms_rel(moved.f32() + r * V, base.f32() + r * V, V);
  return out;
}

// For `samples` random entries of every parameter whose name contains `filter`, the analytic
// gradient of the loss on a fixed [2, T] batch matches (L(w + e) - L(w - e)) / 2e, e = 1e-2.
// Returns the names of the parameters checked.
inline std::vector<std::string> expect_gradients_match_finite_differences(LanguageModel& model, int64_t T,
                                                                          int samples, const std::string& filter = "") {
  const int64_t B = 2, V = model.config().vocab_size;
  Tensor ids = random_ids(B, T, V, 9), targets = random_ids(B * T, 1, V, 10).reshape({B * T});
  auto loss_of = [&] { return ag::cross_entropy(model.forward(ids), targets, {}); };
  ag::backward(loss_of());
  Rng pick(1);
  std::vector<std::string> names;
  for (const auto& p : model.params()) {
    if (p.name.find(filter) == std::string::npos) continue;
    names.push_back(p.name);
    Tensor& w = p.var->value();
    EXPECT_TRUE(p.var->grad().defined()) << p.name;
    if (!p.var->grad().defined()) continue;
    for (int s = 0; s < samples; ++s) {
      int64_t i = static_cast<int64_t>(pick.below(w.numel()));
      float saved = w.f32()[i], eps = 1e-2f;
      double lp, lm;
      {
        ag::NoGradGuard g;
        w.f32()[i] = saved + eps;
        lp = loss_of().value().f32()[0];
        w.f32()[i] = saved - eps;
        lm = loss_of().value().f32()[0];
      }
      w.f32()[i] = saved;
      double fd = (lp - lm) / (2.0 * eps), an = p.var->grad().f32()[i];
      EXPECT_NEAR(an, fd, 2e-3 + 2e-2 * std::fabs(fd)) << p.name << "[" << i << "]";
    }
  }
  return names;
}

// 100 AdamW steps (lr 3e-3, clipping at 1) on one fixed [4, 32] batch at least halve the loss.
inline void expect_loss_halves_within_100_steps(LanguageModel& model) {
  const int64_t B = 4, T = 32, V = model.config().vocab_size;
  Tensor ids = random_ids(B, T, V, 21), targets = random_ids(B * T, 1, V, 22).reshape({B * T});
  AdamW opt(model.params(), AdamWParams{0.9, 0.95, 1e-8, 0.0});
  float first = 0, last = 0;
  for (int step = 0; step < 100; ++step) {
    ag::Var loss = ag::cross_entropy(model.forward(ids), targets, {});
    ag::backward(loss);
    clip_grad_norm(model.params(), 1.0);
    opt.step(3e-3);
    opt.zero_grad();
    (step == 0 ? first : last) = loss.value().f32()[0];
  }
  EXPECT_LE(last, 0.5f * first) << "first " << first << " last " << last;
}

}  // namespace speedlm::testing
