// Step form of the selective scan: one token at a time over every (b, d) channel (decoding).
// The backward runs the channel recurrence in reverse keeping every state.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "ops/ssm/selective_scan/selective_scan.h"
#include "ops/ssm/selective_scan/selective_scan_recurrent.h"

namespace speedlm::ops {

namespace {

sscan::ChannelView<float> view(const SelectiveScanDims& d, const float* u, const float* delta, const float* A,
                               const float* Bm, const float* Cm, const float* Dskip, int64_t bc) {
  const int64_t b = bc / d.D, c = bc % d.D, x = b * d.T * d.D + c, s = b * d.T * d.N;
  return {u + x, delta + x, A + c * d.N, Bm + s, Cm + s, Dskip ? Dskip[c] : 0.0f, d.D, d.N};
}

// Channels per thread range: ~6 N flops and N exps per channel-token.
int64_t channel_grain(const SelectiveScanDims& d) { return std::max<int64_t>(1, 8192 / std::max<int64_t>(1, d.N)); }

}  // namespace

void selective_scan_step_fwd(const SelectiveScanParams&, const SelectiveScanDims& d, const float* u,
                             const float* delta, const float* A, const float* Bm, const float* Cm,
                             const float* Dskip, float* state, float* y) {
  for (int64_t t = 0; t < d.T; ++t)
    parallel_for(d.B * d.D, channel_grain(d), [&](int64_t lo, int64_t hi) {
      for (int64_t bc = lo; bc < hi; ++bc)
        sscan::channel_fwd(view(d, u, delta, A, Bm, Cm, Dskip, bc), t, t + 1, state + bc * d.N,
                           y + (bc / d.D) * d.T * d.D + bc % d.D);
    });
}

void selective_scan_step_bwd(const SelectiveScanParams&, const SelectiveScanDims& d, const float* u,
                             const float* delta, const float* A, const float* Bm, const float* Cm,
                             const float* Dskip, const float* h0, const float* d_y, const float* d_ht,
                             const SelectiveScanGrads<float>& g) {
  // Channels write dA rows of their own but share dB, dC (summed over d): one batch row per
  // thread range keeps those writes disjoint.
  // fill_n, not memset: with T = 0 these buffers may be null.
  std::fill_n(g.dA, d.D * d.N, float{0});
  std::fill_n(g.dB, d.B * d.T * d.N, float{0});
  std::fill_n(g.dC, d.B * d.T * d.N, float{0});
  std::vector<float> dA(d.B * d.D * d.N, 0.0f), dD(d.B * d.D, 0.0f);
  parallel_for(d.B, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> hs(d.N), dh(d.N), states;
    for (int64_t b = lo; b < hi; ++b)
      for (int64_t c = 0; c < d.D; ++c) {
        const int64_t bc = b * d.D + c, x = b * d.T * d.D + c, s = b * d.T * d.N;
        for (int64_t n = 0; n < d.N; ++n) {
          hs[n] = h0 ? h0[bc * d.N + n] : 0.0f;
          dh[n] = d_ht ? d_ht[bc * d.N + n] : 0.0f;
        }
        sscan::ChannelGrads<float> cg{g.du + x, g.ddelta + x, &dA[bc * d.N], g.dB + s, g.dC + s, &dD[bc]};
        sscan::channel_bwd(view(d, u, delta, A, Bm, Cm, Dskip, bc), 0, d.T, hs.data(), d_y + x, dh.data(), cg,
                           states);
        if (g.dh0) std::memcpy(g.dh0 + bc * d.N, dh.data(), sizeof(float) * d.N);
      }
  });
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t i = 0; i < d.D * d.N; ++i) g.dA[i] += dA[b * d.D * d.N + i];
  if (g.dDskip)
    for (int64_t c = 0; c < d.D; ++c) {
      g.dDskip[c] = 0.0f;
      for (int64_t b = 0; b < d.B; ++b) g.dDskip[c] += dD[b * d.D + c];
    }
}

}  // namespace speedlm::ops
