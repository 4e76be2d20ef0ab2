// Per-example image augmentation. Each example draws from its own splitmix64
// stream keyed by (seed, epoch, batch, example), so results depend on nothing
// else (not the thread, not the order batches are made in). Integers come from
// a plain modulo and normals from Box-Muller on those bits, because the std
// distributions differ between standard libraries.
#include "runtime/Augment.h"

#include "runtime/Data.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace nnc::runtime {

namespace {

constexpr double kTwoPi = 6.283185307179586476925286766559;
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
// Keeps augmentation streams apart from the shuffle, which hashes the same seed.
constexpr uint64_t kAugmentTag = 0x61756d656e746174ULL;

/// A splitmix64 stream: the same numbers on every platform.
class Rng {
public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t bits() {
    uint64_t r = mix64(state_);
    state_ += kGolden;
    return r;
  }

  /// Uniform in [-r, r]; the modulo bias is below (2r+1) / 2^64.
  int64_t offset(int64_t r) { return int64_t(bits() % uint64_t(2 * r + 1)) - r; }

  /// Uniform in [0, 1) with 53 random bits.
  double unit() { return double(bits() >> 11) * 0x1p-53; }

  /// Two independent N(0, 1) deviates (Box-Muller).
  void normals(double &z0, double &z1) {
    double radius = std::sqrt(-2.0 * std::log(1.0 - unit())); // 1 - unit() is in (0, 1]
    double angle = kTwoPi * unit();
    z0 = radius * std::cos(angle);
    z1 = radius * std::sin(angle);
  }

private:
  uint64_t state_;
};

/// Image geometry of one row: C planes of H x W.
struct Geometry {
  int64_t c, h, w;
};

/// img[c][y][x] = img[c][y + dy][x + dx], or 0 where that lies outside the
/// image. A crop window of the zero-padded image and a translation are both
/// this operation. `tmp` holds c*h*w floats.
void translate(float *img, float *tmp, const Geometry &g, int64_t dy, int64_t dx) {
  if (dy == 0 && dx == 0)
    return;
  size_t plane = size_t(g.h * g.w);
  std::fill(tmp, tmp + size_t(g.c) * plane, 0.0f);
  int64_t y0 = std::max<int64_t>(0, -dy), y1 = std::min(g.h, g.h - dy);
  int64_t x0 = std::max<int64_t>(0, -dx), x1 = std::min(g.w, g.w - dx);
  if (y0 < y1 && x0 < x1)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t y = y0; y < y1; ++y)
        std::memcpy(tmp + size_t(c) * plane + size_t(y * g.w + x0),
                    img + size_t(c) * plane + size_t((y + dy) * g.w + x0 + dx), size_t(x1 - x0) * sizeof(float));
  std::memcpy(img, tmp, size_t(g.c) * plane * sizeof(float));
}

void flipRows(float *img, const Geometry &g) {
  for (int64_t r = 0; r < g.c * g.h; ++r)
    std::reverse(img + r * g.w, img + (r + 1) * g.w);
}

/// Throws unless the settings are usable and xb's rows hold C*H*W features
/// when a geometric step is on.
void check(const Augmentation &a, const Tensor &xb, int64_t rowLength) {
  if (a.cropPadding < 0 || a.shift < 0 || !(a.noiseStd >= 0 && std::isfinite(a.noiseStd)))
    throw Error(fmt::format("augmentation settings must be non-negative and finite, got crop padding {}, shift {}, "
                            "noise std {}",
                            a.cropPadding, a.shift, a.noiseStd));
  if (!a.any())
    return;
  if (xb.dtype() != DType::F32 || xb.rank() < 1)
    throw Error("cannot augment " + xb.typeString() + ": augmentation needs f32 [b, ...] features");
  if (!a.geometric())
    return;
  int64_t pixels = 0;
  if (a.channels <= 0 || a.height <= 0 || a.width <= 0 || __builtin_mul_overflow(a.channels, a.height, &pixels) ||
      __builtin_mul_overflow(pixels, a.width, &pixels))
    throw Error(fmt::format("crop, flip and shift need an image geometry, got channels {}, height {}, width {}",
                            a.channels, a.height, a.width));
  if (rowLength != pixels)
    throw Error(fmt::format("image augmentation expects rows of {} x {} x {} = {} features, but the batch is {}",
                            a.channels, a.height, a.width, pixels, xb.typeString()));
}

} // namespace

bool Augmentation::any() const { return geometric() || noiseStd > 0; }

bool Augmentation::geometric() const { return cropPadding > 0 || hflip || shift > 0; }

void augmentBatch(const Augmentation &a, Tensor &xb, uint64_t seed, int64_t epoch, int64_t batchIndex) {
  int64_t rows = xb.rank() ? xb.dim(0) : 0;
  int64_t rowLength = 1;
  for (size_t i = 1; i < xb.rank(); ++i)
    if (__builtin_mul_overflow(rowLength, xb.dim(i), &rowLength)) // only possible when xb has 0 rows
      throw Error("cannot augment " + xb.typeString() + ": rows are too large");
  check(a, xb, rowLength);
  if (!a.any())
    return;
  const Geometry g{a.channels, a.height, a.width};
  std::vector<float> tmp(a.geometric() ? size_t(rowLength) : 0);
  uint64_t batchKey = mix64(mix64(mix64(seed ^ kAugmentTag) ^ uint64_t(epoch)) ^ uint64_t(batchIndex));
  for (int64_t i = 0; i < rows; ++i) {
    float *img = xb.f32() + i * rowLength;
    Rng rng(mix64(batchKey ^ uint64_t(i)));
    // Draws happen only for the steps that are on, in the documented order.
    if (a.cropPadding > 0) {
      // RandomCrop picks top, left in [0, 2p] of the padded image: an offset of top - p.
      int64_t dy = rng.offset(a.cropPadding), dx = rng.offset(a.cropPadding);
      translate(img, tmp.data(), g, dy, dx);
    }
    if (a.hflip && (rng.bits() >> 63))
      flipRows(img, g);
    if (a.shift > 0) {
      int64_t dy = rng.offset(a.shift), dx = rng.offset(a.shift);
      translate(img, tmp.data(), g, dy, dx);
    }
    if (a.noiseStd > 0)
      for (int64_t j = 0; j < rowLength; j += 2) {
        double z0, z1;
        rng.normals(z0, z1);
        img[j] += float(a.noiseStd * z0);
        if (j + 1 < rowLength)
          img[j + 1] += float(a.noiseStd * z1);
      }
  }
}

} // namespace nnc::runtime
