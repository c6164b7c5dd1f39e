// StreamingLLM decoding of the attention mixer (research/algorithms.md §12.1): before any eviction
// it equals normal decoding; after it, a step equals a from-scratch causal pass over the kept
// tokens (the S sinks then the last W) at positions 0 .. S + W - 1, which is the definition of
// pos-shift StreamingLLM; the cache holds S + W tokens in a bounded number of bytes; snapshots
// round-trip. One mixer, so the cached K/V depend only on the inputs and the comparison is exact
// up to rounding (in a deeper model the kept tokens' K/V were computed with the evicted context).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/functions.h"
#include "core/rng.h"
#include "memory/paged_kv_cache.h"
#include "nn/mixer.h"

namespace speedlm {
namespace {

constexpr int64_t D = 32, S = 3, W = 9, P = 4;  // S and W not multiples of P: a page mixes sinks and window

double rms_rel(const float* a, const float* ref, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) num += (a[i] - ref[i]) * (a[i] - ref[i]), den += ref[i] * ref[i];
  return std::sqrt(num) / (std::sqrt(den) + 1e-30);
}

nlohmann::json mixer_json(bool softcap_and_sinks) {
  nlohmann::json j = {{"type", "attention"}, {"heads", 4}, {"kv_heads", 2}, {"head_dim", 8},
                      {"kv_cache", {{"page_size", P}}}};
  j["streaming"] = {{"sink_tokens", S}, {"window", W}};
  // softcap sends decoding through the copied-range path, without it through paged_decode.
  if (softcap_and_sinks) j["softcap"] = 2.0, j["sinks"] = true;
  return j;
}

std::unique_ptr<nn::Mixer> make(const nlohmann::json& j) {
  auto m = nn::make_mixer(j, D);
  m->init(nn::InitSpec{0.3, 0.3}, 5);
  return m;
}

Tensor rows(int64_t n, uint64_t seed) {
  Rng rng(seed);
  Tensor x = Tensor::empty({n, D});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = static_cast<float>(rng.normal());
  return x;
}

Tensor row(const Tensor& x, int64_t t) { return Tensor::from({1, D}, {x.f32() + t * D, x.f32() + (t + 1) * D}); }

// The last output row of a stateless (training-form) causal pass over the given input rows.
std::vector<float> full_last(nn::Mixer& m, const std::vector<const float*>& in) {
  const int64_t n = static_cast<int64_t>(in.size());
  Tensor x = Tensor::empty({n, D});
  for (int64_t t = 0; t < n; ++t) std::copy(in[t], in[t] + D, x.f32() + t * D);
  Tensor y = m.forward(ag::Var(x), 1, n, nullptr).value();
  return {y.f32() + (n - 1) * D, y.f32() + n * D};
}

class Streaming : public ::testing::TestWithParam<bool> {};

TEST_P(Streaming, EqualsNormalDecodeUntilFullThenAFromScratchPassOverTheKeptTokens) {
  ag::NoGradGuard guard;
  // The stateless pass of the same mixer is plain causal attention (streaming changes decoding only).
  auto m = make(mixer_json(GetParam()));
  nn::Mixer* plain = m.get();
  const int64_t N = 40;
  Tensor x = rows(N, 1);
  auto state = m->make_state(1);
  auto& cache = dynamic_cast<PagedKvCache&>(*state);
  EXPECT_EQ(cache.kind(), MemoryKind::WindowKv);
  double gap = 0;
  for (int64_t n = 1; n <= N; ++n) {
    Tensor y = m->step(row(x, n - 1), *state);
    std::vector<const float*> all, kept;
    for (int64_t t = 0; t < n; ++t) all.push_back(x.f32() + t * D);
    for (int64_t t = 0; t < n; ++t)
      if (t < S || t >= n - W) kept.push_back(x.f32() + t * D);
    if (n <= S + W) {
      ASSERT_LE(rms_rel(y.f32(), full_last(*plain, all).data(), D), 1e-5) << "n=" << n;
    } else {
      // Kept tokens re-numbered 0 .. S + W - 1: the stateless pass assigns exactly those positions.
      ASSERT_LE(rms_rel(y.f32(), full_last(*plain, kept).data(), D), 1e-5) << "n=" << n;
      gap = std::max(gap, rms_rel(y.f32(), full_last(*plain, all).data(), D));
      EXPECT_EQ(cache.seq_kept(0), S + W);
    }
    EXPECT_EQ(cache.length(), n);
    EXPECT_EQ(cache.bytes(), cache.bytes_at(n)) << "n=" << n;
  }
  EXPECT_GT(gap, 1e-3) << "eviction changes the result";
}

TEST_P(Streaming, BytesStayConstantAsGenerationContinues) {
  ag::NoGradGuard guard;
  auto m = make(mixer_json(GetParam()));
  Tensor x = rows(1, 2);
  auto state = m->make_state(1);
  // The held pages cycle with period P once evicting: the most bytes over any P steps is the cap.
  const size_t page = dynamic_cast<PagedKvCache&>(*state).layout().bytes;
  size_t early = 0, late = 0;
  for (int64_t n = 1; n <= 200; ++n) {
    m->step(x, *state);
    if (n > 2 * (S + W) && n <= 2 * (S + W) + P) early = std::max(early, state->bytes());
    if (n > 200 - P) late = std::max(late, state->bytes());
  }
  EXPECT_EQ(early, late);
  EXPECT_LE(late, static_cast<size_t>((S + P - 1) / P + (W + P - 1) / P + 1) * page);
  EXPECT_EQ(state->bytes_per_token(), 0u);
  EXPECT_EQ(state->bytes_at(1 << 20), state->bytes_at(1 << 10));
}

TEST_P(Streaming, PrefillWithAStateEqualsTokenByTokenAndSnapshotsRoundTrip) {
  ag::NoGradGuard guard;
  auto m = make(mixer_json(GetParam()));
  const int64_t B = 2, T = 25, N = 30;
  Tensor x = rows(B * N, 3);
  auto chunked = m->make_state(B), stepped = m->make_state(B);
  // Chunked: T tokens per sequence in one call, then single steps.
  Tensor chunk = Tensor::empty({B * T, D});
  for (int64_t b = 0; b < B; ++b) std::copy(x.f32() + b * N * D, x.f32() + (b * N + T) * D, chunk.f32() + b * T * D);
  Tensor yc = m->forward(ag::Var(chunk), B, T, chunked.get()).value();
  for (int64_t t = 0; t < T; ++t) {
    Tensor xt = Tensor::empty({B, D});
    for (int64_t b = 0; b < B; ++b) std::copy(x.f32() + (b * N + t) * D, x.f32() + (b * N + t + 1) * D, xt.f32() + b * D);
    Tensor ys = m->step(xt, *stepped);
    for (int64_t b = 0; b < B; ++b) ASSERT_EQ(rms_rel(yc.f32() + (b * T + t) * D, ys.f32() + b * D, D), 0.0);
  }
  auto snap = chunked->snapshot();
  const size_t bytes = chunked->bytes();
  std::vector<Tensor> first;
  for (int64_t t = T; t < N; ++t) first.push_back(m->step(rows(B, 100 + t), *chunked));
  chunked->restore(*snap);
  EXPECT_EQ(chunked->bytes(), bytes);
  EXPECT_EQ(chunked->length(), T);
  for (int64_t t = T; t < N; ++t) {
    Tensor again = m->step(rows(B, 100 + t), *chunked);
    for (int64_t i = 0; i < again.numel(); ++i) ASSERT_EQ(again.f32()[i], first[t - T].f32()[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(Attention, Streaming, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "SoftcapSinks" : "Plain"; });

}  // namespace
}  // namespace speedlm
