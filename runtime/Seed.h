// The seed of each compiled call's dropout masks, shared by the trainer and
// the libraries `nnc compile` writes, so that both draw the same masks.
#pragma once

#include <cstdint>

namespace nnc::runtime {

/// splitmix64 of (seed, counter).
inline uint64_t mixSeed(uint64_t seed, uint64_t counter) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ULL + counter + 0x632be59bd9b4e019ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// The value of the `rng` scalar for call number `step` of a run seeded
/// with `seed` (non-negative as an i64).
inline int64_t dropoutSeed(uint64_t seed, uint64_t step) { return int64_t(mixSeed(seed, step) >> 1); }

} // namespace nnc::runtime
