#include "runtime/Synthetic.h"

#include "runtime/Seed.h"

#include <cmath>
#include <random>

namespace nnc::runtime {

std::pair<double, double> Ring::centre(int64_t k) const {
  double a = 2 * M_PI * double(k) / double(modes);
  return {radius * std::cos(a), radius * std::sin(a)};
}

Dataset ringData(const Ring &r, int64_t n, uint64_t seed) {
  Dataset d;
  Tensor x(DType::F32, {n, 2});
  d.y = Tensor(DType::I64, {n});
  std::mt19937_64 rng(seed ^ 0x72696e67ULL); // "ring"
  std::uniform_int_distribution<int64_t> mode(0, r.modes - 1);
  std::normal_distribution<double> noise(0.0, r.stddev);
  for (int64_t i = 0; i < n; ++i) {
    int64_t k = mode(rng);
    auto [cx, cy] = r.centre(k);
    x.f32()[2 * i] = float(cx + noise(rng));
    x.f32()[2 * i + 1] = float(cy + noise(rng));
    d.y.i64()[i] = k;
  }
  d.inputs[0] = std::move(x);
  d.numClasses = r.modes;
  return d;
}

RingScore scoreRing(const Ring &r, const Tensor &x) {
  RingScore s;
  s.samples = x.dim(0);
  s.perMode.assign(size_t(r.modes), 0);
  for (int64_t i = 0; i < s.samples; ++i) {
    double px = x.f32()[2 * i], py = x.f32()[2 * i + 1], best = INFINITY;
    int64_t nearest = 0;
    for (int64_t k = 0; k < r.modes; ++k) {
      auto [cx, cy] = r.centre(k);
      double dist = std::hypot(px - cx, py - cy);
      if (dist < best) {
        best = dist;
        nearest = k;
      }
    }
    if (best <= 3 * r.stddev) {
      ++s.highQuality;
      ++s.perMode[size_t(nearest)];
    }
  }
  for (int64_t c : s.perMode)
    s.modesCaptured += c > 0;
  return s;
}

} // namespace nnc::runtime
