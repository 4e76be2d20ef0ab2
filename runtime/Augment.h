// Image augmentations for training minibatches: random crop with zero
// padding, horizontal flip, random translation and Gaussian noise, applied per
// example. Every random choice is derived from (seed, epoch, batch, example)
// with splitmix64 arithmetic, so a batch is augmented the same way on any
// thread, at any time and on every standard library.
#pragma once

#include "runtime/Tensor.h"

#include <cstdint>

namespace nnc::runtime {

/// Image augmentations for training batches, applied per example to x rows
/// that hold images [C, H, W] row-major (channels first; a 784-feature
/// Fashion-MNIST row is [1, 28, 28]). Padding and translation fill with 0 in
/// whatever space x is in (after standardization, 0 is the feature mean).
struct Augmentation {
  int64_t channels = 1, height = 0, width = 0; ///< image geometry (0 = not an image: no geometric step allowed)
  int64_t cropPadding = 0; ///< random crop: pad by this many zero pixels on each side, crop a random H x W window
                           ///< (torchvision RandomCrop(padding=p))
  bool hflip = false;      ///< flip left-right with probability 1/2
  int64_t shift = 0;       ///< random translation by up to +-shift pixels in x and y independently, zeros shifted in
  double noiseStd = 0;     ///< add N(0, noiseStd^2) to every feature

  /// True if any step is on (augmentBatch is then not a no-op).
  bool any() const;
  /// True if a step moves pixels (crop, flip or shift), which needs the geometry.
  bool geometric() const;
};

/// Augments batch xb [b, C*H*W] (f32; any shape [b, ...] with C*H*W features
/// per row) in place. The randomness of example i depends only on (seed,
/// epoch, batchIndex, i), so a batch is augmented identically whatever thread
/// does it and whenever. Order: crop, flip, shift, noise; every channel of an
/// example gets the same crop window, flip and shift. Does nothing when
/// !a.any(). Throws Error if a setting is negative, if xb is not f32, or if
/// xb's row length != C*H*W when a geometric step is on.
void augmentBatch(const Augmentation &a, Tensor &xb, uint64_t seed, int64_t epoch, int64_t batchIndex);

} // namespace nnc::runtime
