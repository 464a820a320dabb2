// \brief Counter-based random numbers: any (seed, stream, index) gives the same draws on any thread count.
#pragma once
#include <cmath>    // for std::log, std::sqrt
#include <cstdint>  // for uint64_t

namespace dfcl {

/// SplitMix64 finaliser: a strong 64-bit mix, used for hashing row ids and seeding.
inline constexpr uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Small fast generator (xoshiro256**), seeded from (seed, stream, index) through mix64.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream, uint64_t index = 0) {
    uint64_t x = mix64(seed ^ mix64(stream + 0x632BE59BD9B4E019ull) ^ mix64(index * 0xD1B54A32D192ED03ull + 1));
    for (auto& w : s_) w = x = mix64(x);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0], s_[3] ^= s_[1], s_[1] ^= s_[2], s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }
  /// Uniform in (0, 1): safe for log().
  double uniform_open() { return (double(next() >> 11) + 0.5) * 0x1.0p-53; }
  /// Standard normal (Marsaglia's polar method: no trigonometry, both values used).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = v * f;
    has_spare_ = true;
    return u * f;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace dfcl
