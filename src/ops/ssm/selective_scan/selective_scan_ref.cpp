// Reference selective scan (the spec): the per-channel recurrence in double; the backward keeps
// every state of the channel.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "ops/ssm/selective_scan/selective_scan.h"
#include "ops/ssm/selective_scan/selective_scan_recurrent.h"

namespace speedlm::ops {

Status selective_scan_check(const SelectiveScanParams& p, const SelectiveScanDims& d) {
  const std::pair<const char*, int64_t> dims[] = {{"batch", d.B}, {"channels", d.D}, {"state_dim", d.N}};
  for (const auto& [name, value] : dims)
    if (value < 1) return Status::errorf("selective_scan", "{} = {}: must be >= 1", name, value);
  if (d.T < 0) return Status::errorf("selective_scan", "T = {}: must be >= 0", d.T);
  if (p.chunk < 1) return Status::errorf("selective_scan", "chunk = {}: must be >= 1", p.chunk);
  return Status::ok();
}

namespace {

sscan::ChannelView<double> view(const SelectiveScanDims& d, const double* u, const double* delta, const double* A,
                                const double* Bm, const double* Cm, const double* Dskip, int64_t b, int64_t c) {
  const int64_t x = b * d.T * d.D + c, s = b * d.T * d.N;
  return {u + x, delta + x, A + c * d.N, Bm + s, Cm + s, Dskip ? Dskip[c] : 0.0, d.D, d.N};
}

}  // namespace

void selective_scan_ref_fwd(const SelectiveScanParams&, const SelectiveScanDims& d, const double* u,
                            const double* delta, const double* A, const double* Bm, const double* Cm,
                            const double* Dskip, const double* h0, double* y, double* ht) {
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t c = 0; c < d.D; ++c) {
      double* h = ht + (b * d.D + c) * d.N;
      for (int64_t n = 0; n < d.N; ++n) h[n] = h0 ? h0[(b * d.D + c) * d.N + n] : 0.0;
      sscan::channel_fwd(view(d, u, delta, A, Bm, Cm, Dskip, b, c), 0, d.T, h, y + b * d.T * d.D + c);
    }
}

void selective_scan_ref_bwd(const SelectiveScanParams&, const SelectiveScanDims& d, const double* u,
                            const double* delta, const double* A, const double* Bm, const double* Cm,
                            const double* Dskip, const double* h0, const double* d_y, const double* d_ht,
                            const SelectiveScanGrads<double>& g) {
  // fill_n, not memset: with T = 0 these buffers may be null.
  std::fill_n(g.dA, d.D * d.N, double{0});
  std::fill_n(g.dB, d.B * d.T * d.N, double{0});
  std::fill_n(g.dC, d.B * d.T * d.N, double{0});
  std::vector<double> dD(d.D, 0.0), hs(d.N), dh(d.N), states;
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t c = 0; c < d.D; ++c) {
      const int64_t si = (b * d.D + c) * d.N, x = b * d.T * d.D + c, s = b * d.T * d.N;
      for (int64_t n = 0; n < d.N; ++n) {
        hs[n] = h0 ? h0[si + n] : 0.0;
        dh[n] = d_ht ? d_ht[si + n] : 0.0;
      }
      sscan::ChannelGrads<double> cg{g.du + x, g.ddelta + x, g.dA + c * d.N, g.dB + s, g.dC + s, &dD[c]};
      sscan::channel_bwd(view(d, u, delta, A, Bm, Cm, Dskip, b, c), 0, d.T, hs.data(), d_y + x, dh.data(), cg,
                         states);
      if (g.dh0) std::memcpy(g.dh0 + si, dh.data(), sizeof(double) * d.N);
    }
  if (g.dDskip) std::memcpy(g.dDskip, dD.data(), sizeof(double) * d.D);
}

}  // namespace speedlm::ops
