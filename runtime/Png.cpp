#include "runtime/Png.h"

#include "runtime/Data.h"

#include <algorithm>
#include <cmath>
#include <zlib.h>

namespace nnc::runtime {

namespace {

void put32(std::string &out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8)
    out.push_back(char((v >> s) & 0xff));
}

/// A chunk: length, type, data, CRC-32 of type and data.
void chunk(std::string &out, const char *type, const std::string &data) {
  put32(out, uint32_t(data.size()));
  std::string body = std::string(type, 4) + data;
  out += body;
  put32(out, uint32_t(crc32(0, reinterpret_cast<const Bytef *>(body.data()), uInt(body.size()))));
}

} // namespace

std::string encodePng(int64_t width, int64_t height, int channels, const std::vector<uint8_t> &pixels) {
  if (width <= 0 || height <= 0 || width > (1 << 24) || height > (1 << 24) || (channels != 1 && channels != 3) ||
      int64_t(pixels.size()) != width * height * channels)
    throw Error("internal: bad PNG geometry");
  std::string out = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put32(ihdr, uint32_t(width));
  put32(ihdr, uint32_t(height));
  ihdr += std::string{char(8), char(channels == 1 ? 0 : 2), 0, 0, 0}; // depth, color type, deflate, filter, no interlace
  chunk(out, "IHDR", ihdr);
  // Each row starts with its filter type (0: none).
  size_t rowBytes = size_t(width) * size_t(channels);
  std::vector<uint8_t> raw;
  raw.reserve((rowBytes + 1) * size_t(height));
  for (int64_t y = 0; y < height; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), pixels.begin() + long(size_t(y) * rowBytes), pixels.begin() + long(size_t(y + 1) * rowBytes));
  }
  uLongf size = compressBound(uLong(raw.size()));
  std::string z(size, '\0');
  if (compress2(reinterpret_cast<Bytef *>(&z[0]), &size, raw.data(), uLong(raw.size()), 9) != Z_OK)
    throw Error("PNG: zlib could not compress the image");
  z.resize(size);
  chunk(out, "IDAT", z);
  chunk(out, "IEND", "");
  return out;
}

std::string imageGridPng(const Tensor &images, int64_t cols, double lo, double hi) {
  if (images.rank() != 4 || (images.dim(1) != 1 && images.dim(1) != 3) || images.dtype() != DType::F32)
    throw Error("an image grid needs images [n, C, H, W] with C 1 or 3, not " + images.typeString());
  int64_t n = images.dim(0), c = images.dim(1), h = images.dim(2), w = images.dim(3), pad = 2;
  cols = std::max<int64_t>(1, std::min(cols, n));
  int64_t rows = (n + cols - 1) / cols;
  int64_t W = cols * (w + pad) + pad, H = rows * (h + pad) + pad;
  std::vector<uint8_t> px(size_t(W * H * c), 255);
  const float *src = images.f32();
  for (int64_t i = 0; i < n; ++i) {
    int64_t ox = pad + (i % cols) * (w + pad), oy = pad + (i / cols) * (h + pad);
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          double v = (double(src[((i * c + ch) * h + y) * w + x]) - lo) / (hi - lo);
          v = std::isfinite(v) ? std::clamp(v, 0.0, 1.0) : 0.0;
          px[size_t(((oy + y) * W + ox + x) * c + ch)] = uint8_t(std::lround(v * 255));
        }
  }
  return encodePng(W, H, int(c), px);
}

} // namespace nnc::runtime
