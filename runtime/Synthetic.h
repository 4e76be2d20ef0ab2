// Data sources that generate their examples: the 2-D mixture of Gaussians
// on a ring that GAN papers test mode collapse with, and its evaluation.
#pragma once

#include "runtime/Data.h"

#include <cstdint>
#include <vector>

namespace nnc::runtime {

/// `modes` Gaussians of standard deviation `stddev` centred on a circle of
/// radius `radius` (mode k at angle 2 pi k / modes), equally likely.
struct Ring {
  int64_t modes = 8;
  double radius = 2.0, stddev = 0.02;
  /// Centre of mode k.
  std::pair<double, double> centre(int64_t k) const;
};

/// n points of the ring, x f32[n, 2], y the mode of each (i64[n]); the same
/// seed gives the same points.
Dataset ringData(const Ring &r, int64_t n, uint64_t seed);

/// The VEEGAN / PacGAN protocol for samples of the ring: a sample is of high
/// quality within 3 standard deviations of its nearest mode; a mode is
/// captured when some high-quality sample is nearest to it.
struct RingScore {
  int64_t samples = 0, highQuality = 0, modesCaptured = 0;
  std::vector<int64_t> perMode; ///< high-quality samples nearest to each mode
};
/// `x` is [n, 2] (f32).
RingScore scoreRing(const Ring &r, const Tensor &x);

} // namespace nnc::runtime
