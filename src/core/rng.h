// Counter-based RNG (Philox-4x32-10, Salmon et al. 2011): the value of draw i is a
// pure function of (seed, i), so a stream is reproducible from two integers and
// independent streams come from different seeds or counter ranges.
#pragma once

#include <array>
#include <cstdint>

namespace speedlm {

std::array<uint32_t, 4> philox4x32(uint64_t seed, uint64_t counter_hi, uint64_t counter_lo);

class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t stream = 0) : seed_(seed), stream_(stream) {}
  uint64_t next_u64();
  float uniform();           // [0, 1)
  float normal();            // N(0, 1), Box-Muller
  uint64_t below(uint64_t n);  // uniform integer in [0, n)
  uint64_t counter() const { return counter_; }
  void set_counter(uint64_t c) { counter_ = c; }
  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_;
  uint64_t stream_;
  uint64_t counter_ = 0;
};

}  // namespace speedlm
