// A PNG encoder (8-bit grayscale or RGB, one zlib stream, no filtering) and
// the image grids nnc sample writes for a generator.
#pragma once

#include "runtime/Tensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace nnc::runtime {

/// The bytes of a PNG file of `width` x `height` pixels, `channels` 1 (gray)
/// or 3 (RGB), rows top to bottom, `pixels` holding width*height*channels bytes.
std::string encodePng(int64_t width, int64_t height, int channels, const std::vector<uint8_t> &pixels);

/// `images` [n, C, H, W] (C 1 or 3) laid out in a grid of `cols` columns with
/// a 2-pixel border, values in [lo, hi] mapped to 0..255 (clamped).
std::string imageGridPng(const Tensor &images, int64_t cols, double lo, double hi);

} // namespace nnc::runtime
