// Tests for image augmentation (crop, flip, shift, noise; determinism and
// errors) and for the background BatchLoader, whose output must equal
// BatchIterator + augmentBatch byte for byte.
#include "runtime/Augment.h"
#include "runtime/Loader.h"

#include "test/unit/ErrorMatchers.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace nnc::runtime;

namespace {

using Image = std::vector<float>;

/// A C x H x W image with the distinct, non-zero pixel values 1, 2, ...
Image distinctImage(int64_t c, int64_t h, int64_t w) {
  Image img(size_t(c * h * w));
  for (size_t i = 0; i < img.size(); ++i)
    img[i] = float(i + 1);
  return img;
}

/// A batch of `rows` copies of `img`.
Tensor batchOf(const Image &img, int64_t rows) {
  Tensor t(DType::F32, {rows, int64_t(img.size())});
  for (int64_t r = 0; r < rows; ++r)
    std::memcpy(t.f32() + r * int64_t(img.size()), img.data(), img.size() * sizeof(float));
  return t;
}

Image row(const Tensor &t, int64_t r) {
  int64_t n = t.dim(1);
  return Image(t.f32() + r * n, t.f32() + (r + 1) * n);
}

/// Reference crop / shift: out[c][y][x] = in[c][y + dy][x + dx], 0 outside.
Image translated(const Image &in, const Augmentation &g, int64_t dy, int64_t dx) {
  Image out(in.size(), 0.0f);
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t y = 0; y < g.height; ++y)
      for (int64_t x = 0; x < g.width; ++x) {
        int64_t sy = y + dy, sx = x + dx;
        if (sy >= 0 && sy < g.height && sx >= 0 && sx < g.width)
          out[size_t((c * g.height + y) * g.width + x)] = in[size_t((c * g.height + sy) * g.width + sx)];
      }
  return out;
}

/// Reference flip: out[c][y][x] = in[c][y][W - 1 - x].
Image mirrored(const Image &in, const Augmentation &g) {
  Image out(in.size());
  for (int64_t c = 0; c < g.channels; ++c)
    for (int64_t y = 0; y < g.height; ++y)
      for (int64_t x = 0; x < g.width; ++x)
        out[size_t((c * g.height + y) * g.width + x)] = in[size_t((c * g.height + y) * g.width + g.width - 1 - x)];
  return out;
}

/// One geometric transform: translation by (dy, dx), then a flip if `flip`.
using Transform = std::tuple<int64_t, int64_t, bool>;

/// Every (dy, dx, flip) with |dy|, |dx| <= p (flip only if allowed) for which
/// the reference applied to `in` gives exactly `out`, all channels together.
std::vector<Transform> matchingTransforms(const Image &in, const Image &out, const Augmentation &g, int64_t p,
                                          bool allowFlip) {
  std::vector<Transform> found;
  for (int64_t dy = -p; dy <= p; ++dy)
    for (int64_t dx = -p; dx <= p; ++dx)
      for (bool flip : {false, true}) {
        if (flip && !allowFlip)
          continue;
        Image ref = translated(in, g, dy, dx);
        if ((flip ? mirrored(ref, g) : ref) == out)
          found.emplace_back(dy, dx, flip);
      }
  return found;
}

Augmentation geometry(int64_t c, int64_t h, int64_t w) {
  Augmentation a;
  a.channels = c;
  a.height = h;
  a.width = w;
  return a;
}

/// Augments `rows` copies of a distinct-valued image with `a` and expects
/// every row to be the reference transform for exactly one (dy, dx, flip) in
/// range; returns how often each transform occurred.
std::map<Transform, int> expectExactTransforms(const Augmentation &a, int64_t p, int64_t rows) {
  Image img = distinctImage(a.channels, a.height, a.width);
  Tensor xb = batchOf(img, rows);
  augmentBatch(a, xb, 42, 3, 7);
  std::map<Transform, int> counts;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<Transform> m = matchingTransforms(img, row(xb, r), a, p, a.hflip);
    EXPECT_EQ(m.size(), 1u) << "row " << r << " is not one transform of the input";
    if (m.size() == 1)
      ++counts[m[0]];
  }
  return counts;
}

bool sameBytes(const Tensor &a, const Tensor &b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.bytes()) == 0;
}

} // namespace

TEST(Augment, CropIsAWindowOfThePaddedImage) {
  // 3 x 4 with padding 2: the 5 x 5 window offsets, all equally likely.
  Augmentation a = geometry(1, 3, 4);
  a.cropPadding = 2;
  std::map<Transform, int> counts = expectExactTransforms(a, 2, 1000);
  // P(some offset never drawn) < 25 * (24/25)^1000 ~ 4e-17.
  EXPECT_EQ(counts.size(), 25u);
  for (const auto &[t, n] : counts)
    EXPECT_FALSE(std::get<2>(t));
}

TEST(Augment, CropPaddingLargerThanTheImage) {
  // Windows entirely in the padding give an all-zero image; anything else is
  // still an exact window.
  Augmentation a = geometry(1, 2, 2);
  a.cropPadding = 3;
  Image img = distinctImage(1, 2, 2);
  Tensor xb = batchOf(img, 400);
  augmentBatch(a, xb, 1, 0, 0);
  int zeros = 0;
  for (int64_t r = 0; r < 400; ++r) {
    Image out = row(xb, r);
    std::vector<Transform> m = matchingTransforms(img, out, a, 3, false);
    ASSERT_FALSE(m.empty()) << "row " << r;
    zeros += out == Image(4, 0.0f);
  }
  // 49 - 9 of the 49 windows miss the image: expected 400 * 40/49 ~ 327, sd ~ 7.7.
  EXPECT_GT(zeros, 280);
  EXPECT_LT(zeros, 370);
}

TEST(Augment, FlipIsAnExactMirrorForAboutHalf) {
  Augmentation a = geometry(1, 3, 4);
  a.hflip = true;
  std::map<Transform, int> counts = expectExactTransforms(a, 0, 400);
  int flipped = counts[{0, 0, true}], kept = counts[{0, 0, false}];
  EXPECT_EQ(flipped + kept, 400);
  // Binomial(400, 1/2): sd 10; 6 sd either side.
  EXPECT_GT(flipped, 140);
  EXPECT_LT(flipped, 260);
}

TEST(Augment, ShiftMovesByAtMostShiftPixels) {
  Augmentation a = geometry(1, 3, 4);
  a.shift = 1;
  std::map<Transform, int> counts = expectExactTransforms(a, 1, 500);
  EXPECT_EQ(counts.size(), 9u); // P(miss) < 9 * (8/9)^500 ~ 3e-25
  // Every count is Binomial(500, 1/9): mean 55.6, sd 7.0.
  for (const auto &[t, n] : counts) {
    EXPECT_GT(n, 20);
    EXPECT_LT(n, 95);
  }
}

TEST(Augment, ChannelsMoveTogether) {
  // A shared (dy, dx, flip) must explain all three channels at once; a
  // transform chosen per channel would match no candidate.
  Augmentation a = geometry(3, 3, 4);
  a.cropPadding = 1;
  a.hflip = true;
  std::map<Transform, int> counts = expectExactTransforms(a, 1, 600);
  EXPECT_EQ(counts.size(), 18u); // 9 offsets x 2; P(miss) < 18 * (17/18)^600 ~ 2e-14
}

TEST(Augment, CropFlipShiftCompose) {
  // The output must be crop (p 1), optional flip, shift (1) of the input for
  // some draw; the composition is not always unique, so search them all.
  Augmentation a = geometry(2, 3, 4);
  a.cropPadding = 1;
  a.hflip = true;
  a.shift = 1;
  Image img = distinctImage(2, 3, 4);
  Tensor xb = batchOf(img, 100);
  augmentBatch(a, xb, 5, 0, 0);
  for (int64_t r = 0; r < 100; ++r) {
    Image out = row(xb, r);
    bool found = false;
    for (int64_t cy = -1; cy <= 1 && !found; ++cy)
      for (int64_t cx = -1; cx <= 1 && !found; ++cx)
        for (bool flip : {false, true}) {
          Image cropped = translated(img, a, cy, cx);
          if (!matchingTransforms(flip ? mirrored(cropped, a) : cropped, out, a, 1, false).empty()) {
            found = true;
            break;
          }
        }
    EXPECT_TRUE(found) << "row " << r;
  }
}

TEST(Augment, NoiseIsNormalWithTheGivenStd) {
  // 64 x 783 values (an odd row length: the last value of each row uses half
  // a Box-Muller pair). Tolerances are 5 standard errors.
  const int64_t rows = 64, features = 783;
  const double sigma = 0.5;
  Augmentation a;
  a.noiseStd = sigma;
  Tensor xb(DType::F32, {rows, features});
  for (int64_t i = 0; i < xb.numel(); ++i)
    xb.f32()[i] = 3.0f;
  augmentBatch(a, xb, 11, 2, 9);
  const double n = double(xb.numel());
  double sum = 0, sumSq = 0, pairProduct = 0, pairs = 0, within = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < features; ++j) {
      double v = xb.f32()[r * features + j] - 3.0;
      sum += v;
      sumSq += v * v;
      within += std::fabs(v) < sigma;
      if (j % 2 == 0 && j + 1 < features) {
        pairProduct += v * (xb.f32()[r * features + j + 1] - 3.0);
        ++pairs;
      }
    }
  double mean = sum / n;
  double sd = std::sqrt(sumSq / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 5 * sigma / std::sqrt(n));
  EXPECT_NEAR(sd, sigma, 5 * sigma / std::sqrt(2 * n));
  // P(|z| < 1) = 0.6827 for a normal; a wrong transform shows up here.
  EXPECT_NEAR(within / n, 0.682689, 5 * std::sqrt(0.682689 * 0.317311 / n));
  // The two deviates of a Box-Muller pair are independent.
  EXPECT_NEAR(pairProduct / pairs, 0.0, 5 * sigma * sigma / std::sqrt(pairs));
  // Rows get different noise.
  EXPECT_NE(row(xb, 0), row(xb, 1));
}

TEST(Augment, DeterministicPerSeedEpochBatchAndExample) {
  Augmentation a = geometry(1, 3, 4);
  a.cropPadding = 1;
  a.hflip = true;
  a.shift = 1;
  a.noiseStd = 0.1;
  Tensor base = batchOf(distinctImage(1, 3, 4), 8);
  auto run = [&](uint64_t seed, int64_t epoch, int64_t batch, int64_t rows = 8) {
    Tensor xb = batchOf(distinctImage(1, 3, 4), rows);
    augmentBatch(a, xb, seed, epoch, batch);
    return xb;
  };
  Tensor ref = run(1, 2, 3);
  EXPECT_TRUE(sameBytes(ref, run(1, 2, 3)));
  EXPECT_FALSE(sameBytes(ref, base));
  EXPECT_FALSE(sameBytes(ref, run(1, 3, 3)));
  EXPECT_FALSE(sameBytes(ref, run(1, 2, 4)));
  EXPECT_FALSE(sameBytes(ref, run(2, 2, 3)));
  // An example's randomness does not depend on the size of its batch.
  Tensor first3 = run(1, 2, 3, 3);
  EXPECT_EQ(std::memcmp(first3.data(), ref.data(), first3.bytes()), 0);
}

TEST(Augment, OffIsANoOp) {
  Augmentation a; // no geometry, nothing on
  EXPECT_FALSE(a.any());
  Tensor xb = batchOf(distinctImage(1, 3, 4), 4);
  Tensor before = xb;
  augmentBatch(a, xb, 1, 2, 3);
  EXPECT_TRUE(sameBytes(xb, before));
  // Without a step, neither the geometry nor the dtype is checked.
  Tensor ints(DType::I64, {2, 5});
  augmentBatch(a, ints, 1, 2, 3);
}

TEST(Augment, Errors) {
  Tensor xb = batchOf(distinctImage(1, 3, 4), 2);
  Augmentation wrong = geometry(1, 28, 28);
  wrong.hflip = true;
  EXPECT_ERROR_HAS(augmentBatch(wrong, xb, 0, 0, 0), "1 x 28 x 28 = 784 features", "f32[2, 12]");
  Augmentation none;
  none.shift = 2;
  EXPECT_ERROR_HAS(augmentBatch(none, xb, 0, 0, 0), "need an image geometry", "height 0");
  Augmentation negative = geometry(1, 3, 4);
  negative.cropPadding = -1;
  EXPECT_ERROR_HAS(augmentBatch(negative, xb, 0, 0, 0), "non-negative", "crop padding -1");
  Augmentation nanNoise;
  nanNoise.noiseStd = std::nan("");
  EXPECT_ERROR_HAS(augmentBatch(nanNoise, xb, 0, 0, 0), "noise std nan");
  Augmentation noise;
  noise.noiseStd = 1;
  Tensor ints(DType::I64, {2, 12});
  EXPECT_ERROR_HAS(augmentBatch(noise, ints, 0, 0, 0), "cannot augment i64[2, 12]", "needs f32");
  // Noise alone needs no geometry; [b, C, H, W] batches work like [b, C*H*W].
  augmentBatch(noise, xb, 0, 0, 0);
  Augmentation crop = geometry(1, 3, 4);
  crop.cropPadding = 1;
  Tensor four(DType::F32, {2, 1, 3, 4});
  augmentBatch(crop, four, 0, 0, 0);
}

namespace {

/// n labelled 1x3x4 images; row i holds 100 i + 1, ..., 100 i + 12.
Dataset imageData(int64_t n) {
  Dataset d;
  d.x() = Tensor(DType::F32, {n, 12});
  d.y = Tensor(DType::I64, {n});
  d.numClasses = n;
  for (int64_t i = 0; i < n; ++i) {
    d.y.i64()[i] = i;
    for (int64_t j = 0; j < 12; ++j)
      d.x().f32()[i * 12 + j] = float(100 * i + j + 1);
  }
  return d;
}

Augmentation allSteps() {
  Augmentation a = geometry(1, 3, 4);
  a.cropPadding = 1;
  a.hflip = true;
  a.shift = 1;
  a.noiseStd = 0.25;
  return a;
}

/// Expects `loader` to produce epoch `epoch` exactly like BatchIterator +
/// augmentBatch; waits `pause` before each batch so the ring fills up.
void expectEpochMatches(BatchLoader &loader, const Dataset &d, int64_t batch, uint64_t seed, const Augmentation &a,
                        uint64_t epoch, std::chrono::milliseconds pause = {}) {
  BatchIterator it(d, batch, true, seed);
  it.reset(epoch);
  Tensor xr, yr, xb, yb;
  int64_t index = 0;
  while (it.next(xr, yr)) {
    augmentBatch(a, xr, seed, int64_t(epoch), index);
    std::this_thread::sleep_for(pause);
    ASSERT_TRUE(loader.next(xb, yb)) << "epoch " << epoch << " batch " << index;
    EXPECT_TRUE(sameBytes(xb, xr)) << "epoch " << epoch << " batch " << index;
    EXPECT_TRUE(sameBytes(yb, yr)) << "epoch " << epoch << " batch " << index;
    ++index;
  }
  EXPECT_EQ(index, loader.numBatches());
  EXPECT_FALSE(loader.next(xb, yb));
  EXPECT_FALSE(loader.next(xb, yb)); // stays at the end
}

} // namespace

TEST(BatchLoader, MatchesIteratorPlusAugmentation) {
  Dataset d = imageData(23); // batches of 5: 5, 5, 5, 5, 3
  Augmentation a = allSteps();
  for (int depth : {1, 2, 3, 8}) {
    BatchLoader loader(d, 5, true, 77, a, depth);
    EXPECT_EQ(loader.numBatches(), 5);
    for (uint64_t epoch : {0, 1}) {
      loader.start(epoch);
      expectEpochMatches(loader, d, 5, 77, a, epoch, std::chrono::milliseconds(depth == 2 ? 2 : 0));
    }
  }
}

TEST(BatchLoader, LastPartialBatchAndLabels) {
  Dataset d = imageData(23);
  BatchLoader loader(d, 5, true, 3, allSteps(), 1);
  loader.start(4);
  Tensor xb, yb;
  std::vector<int64_t> sizes;
  std::set<int64_t> labels;
  while (loader.next(xb, yb)) {
    sizes.push_back(yb.dim(0));
    EXPECT_EQ(xb.shape(), (std::vector<int64_t>{yb.dim(0), 12}));
    labels.insert(yb.i64(), yb.i64() + yb.dim(0));
  }
  EXPECT_EQ(sizes, (std::vector<int64_t>{5, 5, 5, 5, 3}));
  EXPECT_EQ(labels.size(), 23u);
}

TEST(BatchLoader, WithoutAugmentationOrShuffleIsTheIterator) {
  Dataset d = imageData(10);
  BatchLoader loader(d, 4, false, 0);
  Tensor xb, yb, xr, yr;
  EXPECT_FALSE(loader.next(xb, yb)); // before start()
  BatchIterator it(d, 4, false, 0);
  loader.start(0);
  while (it.next(xr, yr)) {
    ASSERT_TRUE(loader.next(xb, yb));
    EXPECT_TRUE(sameBytes(xb, xr));
    EXPECT_TRUE(sameBytes(yb, yr));
  }
  EXPECT_FALSE(loader.next(xb, yb));
}

TEST(BatchLoader, RestartDropsTheUnfinishedEpoch) {
  Dataset d = imageData(40);
  Augmentation a = allSteps();
  BatchLoader loader(d, 3, true, 9, a, 2);
  Tensor xb, yb;
  loader.start(0);
  ASSERT_TRUE(loader.next(xb, yb));
  ASSERT_TRUE(loader.next(xb, yb));
  loader.start(1);
  expectEpochMatches(loader, d, 3, 9, a, 1);
  // Restart right away, and restart the same epoch after it was read.
  loader.start(2);
  loader.start(0);
  expectEpochMatches(loader, d, 3, 9, a, 0);
  loader.start(0);
  expectEpochMatches(loader, d, 3, 9, a, 0);
}

TEST(BatchLoader, DestroyMidEpochDoesNotHang) {
  Dataset d = imageData(200);
  Augmentation a = allSteps();
  { BatchLoader never(d, 4, true, 1, a); }
  {
    BatchLoader idle(d, 4, true, 1, a);
    idle.start(0); // destroyed while (probably) producing
  }
  {
    BatchLoader full(d, 4, true, 1, a, 1);
    full.start(0);
    Tensor xb, yb;
    ASSERT_TRUE(full.next(xb, yb));
    std::this_thread::sleep_for(std::chrono::milliseconds(20)); // the worker blocks on the full ring
  }
  {
    BatchLoader done(d, 200, false, 1, a, 1);
    done.start(0);
    Tensor xb, yb;
    ASSERT_TRUE(done.next(xb, yb));
    EXPECT_FALSE(done.next(xb, yb));
  }
}

TEST(BatchLoader, AugmentationErrorReachesNext) {
  Dataset d = imageData(10);
  Augmentation wrong = geometry(1, 28, 28);
  wrong.hflip = true;
  for (int depth : {1, 3}) {
    BatchLoader loader(d, 4, true, 1, wrong, depth);
    Tensor xb, yb;
    for (uint64_t epoch : {0, 1}) {
      loader.start(epoch);
      EXPECT_ERROR_HAS(loader.next(xb, yb), "1 x 28 x 28 = 784 features", "f32[4, 12]");
      EXPECT_FALSE(loader.next(xb, yb)); // the failed epoch is over
    }
  }
}

TEST(BatchLoader, EmptyDataAndBadArguments) {
  Dataset empty;
  empty.x() = Tensor(DType::F32, {0, 12});
  empty.y = Tensor(DType::I64, {0});
  BatchLoader loader(empty, 4, true, 1, allSteps());
  EXPECT_EQ(loader.numBatches(), 0);
  loader.start(0);
  Tensor xb, yb;
  EXPECT_FALSE(loader.next(xb, yb));

  Dataset d = imageData(3);
  EXPECT_ERROR_HAS(BatchLoader(d, 4, true, 1, {}, 0), "depth must be at least 1, got 0");
  EXPECT_ERROR_HAS(BatchLoader(d, 0, true, 1), "batch size must be positive");
}
