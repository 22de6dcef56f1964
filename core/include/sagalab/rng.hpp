// Deterministic random numbers for the core: the engine, the fault matcher and
// the simulator draw from an Rng passed in, so that a seed decides everything.
#pragma once

#include <cstdint>

namespace sagalab {

class Rng {
 public:
  virtual ~Rng() = default;
  virtual std::uint64_t next() = 0;

  // Uniform integer in [lo, hi] (inclusive); lo <= hi.
  std::int64_t uniform(std::int64_t lo, std::int64_t hi) {
    if (hi <= lo) return lo;
    auto span = static_cast<std::uint64_t>(hi - lo) + 1;
    return lo + static_cast<std::int64_t>(next() % span);
  }
  // Uniform double in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
};

// SplitMix64: small, fast, and good enough for schedules and jitter.
class SplitMix64 final : public Rng {
 public:
  explicit SplitMix64(std::uint64_t seed = 0) : state_(seed) {}
  std::uint64_t next() override {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

}  // namespace sagalab
