// Data loading (IDX, CSV; both optionally gzipped) and the input pipeline.
// Files are read through zlib's gzread, which passes uncompressed files
// through unchanged, so every loader accepts both forms. Shuffles use
// std::mt19937_64 with a hand-written Fisher-Yates shuffle because
// std::shuffle and the std distributions differ between standard libraries.
#include "runtime/Data.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string_view>

namespace nnc::runtime {

uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

namespace {

/// A gzip-or-raw input file. Reads report short counts only at end of input
/// (including a truncated gzip stream); corrupt compressed data throws.
class GzReader {
public:
  explicit GzReader(const std::string &path) : path_(path) {
    errno = 0;
    file_ = gzopen(path.c_str(), "rb");
    if (!file_)
      throw Error("cannot open '" + path + "': " + (errno ? std::strerror(errno) : "out of memory"));
    gzbuffer(file_, 1 << 17);
  }
  GzReader(const GzReader &) = delete;
  GzReader &operator=(const GzReader &) = delete;
  ~GzReader() { gzclose(file_); }

  const std::string &path() const { return path_; }

  /// Reads up to `n` bytes into `dst`; returns how many were read.
  size_t read(void *dst, size_t n) {
    auto *p = static_cast<unsigned char *>(dst);
    size_t got = 0;
    while (got < n) {
      // gzread takes an unsigned count and returns an int.
      unsigned chunk = unsigned(std::min<size_t>(n - got, size_t(1) << 30));
      int r = gzread(file_, p + got, chunk);
      if (r < 0)
        fail();
      if (r == 0)
        break;
      got += size_t(r);
    }
    int errnum = Z_OK;
    gzerror(file_, &errnum);
    if (errnum != Z_OK && errnum != Z_BUF_ERROR)
      fail();
    // A short read of a gzip stream that lost its end (even just the CRC
    // trailer) leaves Z_BUF_ERROR: the data was never verified.
    if (got < n && errnum == Z_BUF_ERROR && !gzdirect(file_))
      streamTruncated_ = true;
    return got;
  }

  /// Throws if a read ran into the cut-off end of a gzip stream. Callers that
  /// can say more (how many bytes were expected) check their counts first.
  void checkComplete() const {
    if (streamTruncated_)
      throw Error("'" + path_ + "': truncated gzip stream (its end is missing)");
  }

  std::string readAll() {
    std::string out;
    size_t chunk = size_t(1) << 20;
    while (true) {
      size_t old = out.size();
      out.resize(old + chunk);
      size_t got = read(&out[old], chunk);
      out.resize(old + got);
      if (got < chunk) {
        checkComplete();
        return out;
      }
    }
  }

private:
  [[noreturn]] void fail() {
    int errnum = Z_OK;
    const char *msg = gzerror(file_, &errnum);
    if (errnum == Z_ERRNO)
      throw Error("cannot read '" + path_ + "': " + std::strerror(errno));
    // zlib prefixes its message with the path, which we print already.
    std::string text = msg ? msg : "unknown error";
    if (text.compare(0, path_.size() + 2, path_ + ": ") == 0)
      text.erase(0, path_.size() + 2);
    throw Error("'" + path_ + "': corrupt gzip data: " + text);
  }

  std::string path_;
  gzFile file_ = nullptr;
  bool streamTruncated_ = false;
};

uint32_t readBigEndian32(const unsigned char *p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

constexpr uint32_t kIdxImagesMagic = 0x00000803;
constexpr uint32_t kIdxLabelsMagic = 0x00000801;
/// IdxFile's `magic` for an array of any IDX element type and rank.
constexpr uint32_t kIdxAnyArray = 0;

/// The size of an IDX element type (the magic's third byte), 0 if unknown.
size_t idxElementSize(uint32_t type) {
  switch (type) {
  case 0x08: // u8
  case 0x09: // i8
    return 1;
  case 0x0B: // i16
    return 2;
  case 0x0C: // i32
  case 0x0D: // f32
    return 4;
  case 0x0E: // f64
    return 8;
  default:
    return 0;
  }
}

/// An IDX file whose header has been read and checked; the u8 payload follows.
struct IdxFile {
  GzReader reader;
  std::vector<uint32_t> dims;
  uint64_t payloadBytes = 0;

  uint32_t type = 0x08; ///< element type (idxElementSize)

  IdxFile(const std::string &path, uint32_t magic) : reader(path) {
    const bool images = magic == kIdxImagesMagic;
    const char *kind =
        images ? "IDX image file (unsigned bytes, 3 dimensions)" : "IDX label file (unsigned bytes, 1 dimension)";
    unsigned char head[4];
    size_t got = reader.read(head, 4);
    if (got < 4)
      throw Error(fmt::format("'{}': truncated: expected a 4-byte IDX magic number, got {} bytes", path, got));
    uint32_t found = readBigEndian32(head);
    if (magic == kIdxAnyArray) {
      type = (found >> 8) & 0xff;
      if ((found >> 16) != 0 || !idxElementSize(type) || (found & 0xff) == 0)
        throw Error(fmt::format("'{}': bad magic number 0x{:08x}, expected an IDX array: 0x0000TTDD with element type "
                                "TT 08 (u8), 09 (i8), 0B (i16), 0C (i32), 0D (f32) or 0E (f64) and DD dimensions",
                                path, found));
      magic = found;
    } else if (found != magic) {
      uint32_t other = images ? kIdxLabelsMagic : kIdxImagesMagic;
      std::string hint;
      if (found == other)
        hint = images ? " (this looks like a label file)" : " (this looks like an image file)";
      throw Error(fmt::format("'{}': bad magic number 0x{:08x}, expected 0x{:08x} for an {}{}", path, found, magic,
                              kind, hint));
    }
    size_t rank = magic & 0xff;
    std::vector<unsigned char> raw(4 * rank);
    got = reader.read(raw.data(), raw.size());
    if (got < raw.size())
      throw Error(fmt::format("'{}': truncated: expected {} bytes of header after the magic "
                              "number, got {}",
                              path, raw.size(), got));
    payloadBytes = 1;
    for (size_t i = 0; i < rank; ++i) {
      dims.push_back(readBigEndian32(&raw[4 * i]));
      // Three u32 dimensions cannot overflow 64 bits by much, but check anyway.
      if (__builtin_mul_overflow(payloadBytes, uint64_t(dims.back()), &payloadBytes))
        throw Error(fmt::format("'{}': dimensions are too large", path));
    }
    if (__builtin_mul_overflow(payloadBytes, uint64_t(idxElementSize(type)), &payloadBytes))
      throw Error(fmt::format("'{}': dimensions are too large", path));
    if (dims[0] == 0)
      throw Error(fmt::format("'{}': contains no {}", path, images ? "images" : "labels"));
  }

  /// Reads the payload, growing the buffer as data arrives so a lying header
  /// fails as "truncated" instead of reserving a huge buffer up front.
  std::vector<uint8_t> readPayload(const char *what) {
    const std::string &path = reader.path();
    std::vector<uint8_t> buf;
    // Chunks from 64 KiB, doubling up to 64 MiB: a header that lies about a
    // huge payload costs a small buffer, not 64 MiB zeroed per file.
    uint64_t step = uint64_t(64) << 10;
    while (buf.size() < payloadBytes) {
      size_t old = buf.size();
      size_t want = size_t(std::min<uint64_t>(payloadBytes - old, step));
      step = std::min<uint64_t>(step * 2, uint64_t(64) << 20);
      buf.resize(old + want);
      size_t got = reader.read(buf.data() + old, want);
      if (got < want)
        throw Error(
            fmt::format("'{}': truncated: expected {} bytes of {} data, got {}", path, payloadBytes, what, old + got));
    }
    unsigned char extra;
    if (reader.read(&extra, 1) != 0)
      throw Error(fmt::format("'{}': unexpected data after the {} bytes of {} data", path, payloadBytes, what));
    reader.checkComplete();
    return buf;
  }
};

/// Fisher-Yates with a plain modulo: identical on every standard library
/// (std::uniform_int_distribution is not). The bias is below n / 2^64.
void shuffleIndices(std::vector<int64_t> &v, std::mt19937_64 &rng) {
  for (size_t i = v.size(); i > 1; --i) {
    size_t j = size_t(rng() % i);
    std::swap(v[i - 1], v[j]);
  }
}

/// 0, 1, ..., n-1.
std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = int64_t(i);
  return v;
}

/// Checks that the inputs and y describe the same rows.
void checkDataset(const Dataset &d) {
  if (d.inputs.empty())
    throw Error("a data set needs at least one input");
  bool empty = d.y.rank() == 0;
  for (const Tensor &x : d.inputs)
    empty = empty && x.rank() == 0;
  if (empty)
    return;
  for (const Tensor &x : d.inputs) {
    if (x.rank() < 1)
      throw Error("dataset features must be [n, ...], got " + x.typeString());
    if (x.dim(0) != d.inputs[0].dim(0))
      throw Error(fmt::format("dataset inputs have {} and {} rows", d.inputs[0].dim(0), x.dim(0)));
  }
  if (d.y.rank() < 1)
    throw Error("dataset labels must be [n, ...], got " + d.y.typeString());
  if (d.inputs[0].dim(0) != d.y.dim(0))
    throw Error(fmt::format("dataset has {} rows of features but {} labels", d.inputs[0].dim(0), d.y.dim(0)));
}

int64_t featuresPerRow(const Tensor &x) {
  if (x.rank() == 0)
    return 0;
  int64_t f = 1;
  for (size_t i = 1; i < x.rank(); ++i)
    f *= x.dim(i);
  return f;
}

std::vector<int64_t> rowShape(const Tensor &x) {
  if (x.rank() == 0)
    return {0};
  return std::vector<int64_t>(x.shape().begin() + 1, x.shape().end());
}

/// A new data set holding rows idx[begin, end) of `d`, in that order.
Dataset gatherRows(const Dataset &d, const std::vector<int64_t> &idx, size_t begin, size_t end) {
  Dataset out;
  out.numClasses = d.numClasses;
  out.imageShape = d.imageShape;
  out.inputs.resize(d.inputs.size());
  auto gather = [&](const Tensor &from, Tensor &to) {
    std::vector<int64_t> shape = rowShape(from);
    shape.insert(shape.begin(), int64_t(end - begin));
    to = Tensor(from.dtype(), shape);
    size_t rowBytes = size_t(featuresPerRow(from)) * dtypeSize(from.dtype());
    auto *dst = static_cast<char *>(to.data());
    const auto *src = static_cast<const char *>(from.data());
    for (size_t i = begin; i < end && rowBytes; ++i)
      std::memcpy(dst + (i - begin) * rowBytes, src + size_t(idx[i]) * rowBytes, rowBytes);
  };
  for (size_t i = 0; i < d.inputs.size(); ++i)
    gather(d.inputs[i], out.inputs[i]);
  gather(d.y, out.y);
  return out;
}

} // namespace

int64_t featuresPerExample(const Tensor &x) { return featuresPerRow(x); }

std::string readGzipOrRaw(const std::string &path) { return GzReader(path).readAll(); }

std::string readGzipOrRawPrefix(const std::string &path, size_t bytes) {
  std::string out(bytes, '\0');
  out.resize(GzReader(path).read(&out[0], bytes));
  return out;
}

Tensor loadIDXArray(const std::string &path) {
  IdxFile file(path, kIdxAnyArray);
  std::vector<uint8_t> raw = file.readPayload("array");
  std::vector<int64_t> shape(file.dims.begin(), file.dims.end());
  Tensor t(DType::F32, shape);
  float *out = t.f32();
  const size_t size = idxElementSize(file.type), n = raw.size() / size;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char *p = raw.data() + i * size;
    uint64_t bits = 0; // big-endian, as IDX stores every multi-byte type
    for (size_t b = 0; b < size; ++b)
      bits = bits << 8 | p[b];
    switch (file.type) {
    case 0x08:
      out[i] = float(uint8_t(bits));
      break;
    case 0x09:
      out[i] = float(int8_t(uint8_t(bits)));
      break;
    case 0x0B:
      out[i] = float(int16_t(uint16_t(bits)));
      break;
    case 0x0C:
      out[i] = float(int32_t(uint32_t(bits)));
      break;
    case 0x0D: {
      uint32_t w = uint32_t(bits);
      std::memcpy(&out[i], &w, 4);
      break;
    }
    default: {
      double v;
      std::memcpy(&v, &bits, 8);
      out[i] = float(v);
    }
    }
  }
  return t;
}

Dataset loadIDX(const std::string &imagesPath, const std::string &labelsPath, bool realTargets) {
  if (realTargets && !labelsPath.empty()) {
    // The images as usual, then the targets as an array of any type and shape.
    Dataset d = loadIDX(imagesPath, "", false);
    Tensor y = loadIDXArray(labelsPath);
    if (y.dim(0) != d.size())
      throw Error(
          fmt::format("'{}' has {} images but '{}' has {} targets", imagesPath, d.size(), labelsPath, y.dim(0)));
    d.y = std::move(y);
    d.numClasses = 0;
    return d;
  }
  IdxFile images(imagesPath, kIdxImagesMagic);
  std::optional<IdxFile> labelFile;
  if (!labelsPath.empty())
    labelFile.emplace(labelsPath, kIdxLabelsMagic);
  IdxFile &labels = labelFile ? *labelFile : images;
  if (images.dims[0] != labels.dims[0])
    throw Error(fmt::format("'{}' has {} images but '{}' has {} labels", imagesPath, images.dims[0], labelsPath,
                            labels.dims[0]));
  if (images.dims[1] == 0 || images.dims[2] == 0)
    throw Error(fmt::format("'{}': images have size {}x{}", imagesPath, images.dims[1], images.dims[2]));

  std::vector<uint8_t> pixels = images.readPayload("image");
  std::vector<uint8_t> classes = labelFile ? labels.readPayload("label") : std::vector<uint8_t>(size_t(images.dims[0]));

  int64_t n = images.dims[0];
  int64_t features = int64_t(images.dims[1]) * images.dims[2];
  Dataset d;
  d.x() = Tensor(DType::F32, {n, features});
  float *x = d.x().f32();
  for (size_t i = 0; i < pixels.size(); ++i)
    x[i] = float(pixels[i]);
  d.y = Tensor(DType::I64, {n});
  int64_t *y = d.y.i64();
  int64_t maxLabel = 0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = classes[size_t(i)];
    maxLabel = std::max(maxLabel, y[i]);
  }
  d.numClasses = maxLabel + 1;
  d.imageShape = {1, int64_t(images.dims[1]), int64_t(images.dims[2])};
  return d;
}

Dataset loadText(const std::string &path, int64_t context, int64_t stride) {
  if (context < 1 || stride < 1)
    throw Error(
        fmt::format("'{}': text windows need a positive context and stride, got {} and {}", path, context, stride));
  std::string text = GzReader(path).readAll();
  int64_t size = int64_t(text.size());
  if (size < context + 1)
    throw Error(fmt::format("'{}': {} bytes of text are too few for one window of context {} (plus the next byte)",
                            path, size, context));
  int64_t n = (size - context - 1) / stride + 1;
  Dataset d;
  d.x() = Tensor(DType::I64, {n, context});
  d.y = Tensor(DType::I64, {n, context});
  d.numClasses = 256;
  const auto *bytes = reinterpret_cast<const unsigned char *>(text.data());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < context; ++j) {
      d.x().i64()[i * context + j] = bytes[i * stride + j];
      d.y.i64()[i * context + j] = bytes[i * stride + j + 1];
    }
  return d;
}

void scale(Dataset &data, float factor) {
  bool any = false;
  for (Tensor &x : data.inputs) {
    if (x.dtype() != DType::F32)
      continue;
    any = true;
    float *p = x.f32();
    for (int64_t i = 0, e = x.numel(); i < e; ++i)
      p[i] *= factor;
  }
  if (!any)
    throw Error("cannot scale " + data.x().typeString() + " features: scale needs f32 data");
}

Standardizer fitStandardizer(const Tensor &x) {
  if (x.dtype() != DType::F32 || x.rank() < 1)
    throw Error("cannot standardize " + x.typeString() + ": expected f32 [n, ...]");
  int64_t n = x.dim(0);
  if (n == 0)
    throw Error("cannot fit a standardizer on an empty data set");
  int64_t f = featuresPerRow(x);
  // Accumulate in double, two passes: one-pass formulas lose the variance of
  // features with a large mean (e.g. raw 0..255 pixels).
  std::vector<double> mean(size_t(f), 0.0), var(size_t(f), 0.0);
  const float *p = x.f32();
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < f; ++j)
      mean[size_t(j)] += p[r * f + j];
  for (double &m : mean)
    m /= double(n);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < f; ++j) {
      double d = p[r * f + j] - mean[size_t(j)];
      var[size_t(j)] += d * d;
    }
  Standardizer s;
  s.mean.resize(size_t(f));
  s.stddev.resize(size_t(f));
  for (size_t j = 0; j < size_t(f); ++j) {
    s.mean[j] = float(mean[j]);
    // A feature constant over the training rows keeps its scale (as
    // scikit-learn does): dividing by ~0 would blow up other rows' values.
    float sd = float(std::sqrt(var[j] / double(n)));
    s.stddev[j] = sd > 1e-7f ? sd : 1.0f;
  }
  return s;
}

Standardizer fitMinMax(const Tensor &x) {
  if (x.dtype() != DType::F32 || x.rank() < 1 || x.dim(0) == 0)
    throw Error("cannot min-max scale " + x.typeString() + ": expected f32 [n, ...] with n > 0");
  int64_t n = x.dim(0), f = featuresPerRow(x);
  const float *p = x.f32();
  Standardizer s;
  s.mean.assign(p, p + f); // the minimum
  std::vector<float> hi(p, p + f);
  for (int64_t r = 1; r < n; ++r)
    for (int64_t j = 0; j < f; ++j) {
      s.mean[size_t(j)] = std::min(s.mean[size_t(j)], p[r * f + j]);
      hi[size_t(j)] = std::max(hi[size_t(j)], p[r * f + j]);
    }
  for (int64_t j = 0; j < f; ++j)
    s.stddev.push_back(hi[size_t(j)] - s.mean[size_t(j)] > 1e-7f ? hi[size_t(j)] - s.mean[size_t(j)] : 1.0f);
  return s;
}

void oneHotLabels(Dataset &data, int64_t classes) {
  if (data.y.dtype() != DType::I64 || data.y.rank() != 1)
    throw Error("one_hot needs class labels i64[n], got " + data.y.typeString());
  int64_t n = data.y.dim(0);
  Tensor y(DType::F32, {n, classes});
  std::fill_n(y.f32(), n * classes, 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    int64_t c = data.y.i64()[i];
    if (c < 0 || c >= classes)
      throw Error(fmt::format("one_hot: label {} of example {} is outside the label's {} classes", c, i, classes));
    y.f32()[i * classes + c] = 1.0f;
  }
  data.y = std::move(y);
  data.numClasses = classes;
}

void applyStandardizer(const Standardizer &s, Tensor &x) {
  if (x.dtype() != DType::F32 || x.rank() < 1)
    throw Error("cannot standardize " + x.typeString() + ": expected f32 [n, ...]");
  int64_t f = featuresPerRow(x);
  if (s.mean.size() != size_t(f) || s.stddev.size() != size_t(f))
    throw Error(fmt::format("standardizer was fitted on {} features but the data has {}", s.mean.size(), f));
  float *p = x.f32();
  for (int64_t r = 0, n = x.dim(0); r < n; ++r)
    for (int64_t j = 0; j < f; ++j)
      p[r * f + j] = (p[r * f + j] - s.mean[size_t(j)]) / s.stddev[size_t(j)];
}

Standardizer fitStandardizer(const Dataset &data, bool minMax) {
  Standardizer all;
  for (const Tensor &x : data.inputs) {
    if (x.dtype() != DType::F32)
      continue;
    Standardizer s = minMax ? fitMinMax(x) : fitStandardizer(x);
    all.mean.insert(all.mean.end(), s.mean.begin(), s.mean.end());
    all.stddev.insert(all.stddev.end(), s.stddev.begin(), s.stddev.end());
  }
  if (all.mean.empty())
    throw Error("cannot " + std::string(minMax ? "min-max scale " : "standardize ") + data.x().typeString() +
                " features: the data has no f32 input");
  return all;
}

void applyStandardizer(const Standardizer &s, Dataset &data) {
  size_t total = 0, at = 0;
  for (const Tensor &x : data.inputs)
    if (x.dtype() == DType::F32)
      total += size_t(featuresPerRow(x));
  if (s.mean.size() != total || s.stddev.size() != total)
    throw Error(fmt::format("standardizer was fitted on {} features but the data has {}", s.mean.size(), total));
  for (Tensor &x : data.inputs) {
    if (x.dtype() != DType::F32)
      continue;
    size_t f = size_t(featuresPerRow(x));
    Standardizer part;
    part.mean.assign(s.mean.begin() + long(at), s.mean.begin() + long(at + f));
    part.stddev.assign(s.stddev.begin() + long(at), s.stddev.begin() + long(at + f));
    applyStandardizer(part, x);
    at += f;
  }
}

std::pair<Dataset, Dataset> splitValidation(const Dataset &data, double fraction, uint64_t seed) {
  checkDataset(data);
  if (!(fraction >= 0.0 && fraction < 1.0))
    throw Error(fmt::format("validation fraction must be in [0, 1), got {}", fraction));
  int64_t n = data.size();
  std::vector<int64_t> idx = iota(n);
  std::mt19937_64 rng(seed);
  shuffleIndices(idx, rng);
  size_t numVal = size_t(std::llround(double(n) * fraction));
  size_t numTrain = size_t(n) - numVal;
  return {gatherRows(data, idx, 0, numTrain), gatherRows(data, idx, numTrain, size_t(n))};
}

Dataset take(const Dataset &data, int64_t n) {
  checkDataset(data);
  if (n < 0)
    throw Error(fmt::format("cannot take {} rows", n));
  int64_t k = std::min(n, data.size());
  std::vector<int64_t> idx = iota(k);
  return gatherRows(data, idx, 0, size_t(k));
}

BatchIterator::BatchIterator(const Dataset &data, int64_t batchSize, bool shuffle, uint64_t seed)
    : data_(data), batchSize_(batchSize), shuffle_(shuffle), seed_(seed) {
  checkDataset(data);
  if (batchSize <= 0)
    throw Error(fmt::format("batch size must be positive, got {}", batchSize));
  order_.resize(size_t(data.size()));
  reset(0);
}

void BatchIterator::reset(uint64_t epoch) {
  pos_ = 0;
  for (size_t i = 0; i < order_.size(); ++i)
    order_[i] = int64_t(i);
  if (shuffle_) {
    std::mt19937_64 rng(mix64(seed_ ^ mix64(epoch)));
    shuffleIndices(order_, rng);
  }
}

bool BatchIterator::next(Tensor &xb, Tensor &yb) {
  if (data_.inputs.size() != 1)
    throw Error(fmt::format("internal: a data set of {} inputs is drawn in Batches", data_.inputs.size()));
  // The tensors' buffers move through a Batch and back (no copies).
  Batch b;
  b.x.push_back(std::move(xb));
  b.y = std::move(yb);
  bool more = next(b);
  xb = std::move(b.x[0]);
  yb = std::move(b.y);
  return more;
}

bool BatchIterator::next(Batch &out) {
  int64_t n = int64_t(order_.size());
  if (pos_ >= n)
    return false;
  int64_t b = std::min(batchSize_, n - pos_);
  auto fill = [&](const Tensor &from, Tensor &to) {
    std::vector<int64_t> shape = rowShape(from);
    shape.insert(shape.begin(), b);
    if (to.dtype() != from.dtype() || to.shape() != shape)
      to = Tensor(from.dtype(), shape);
    size_t rowBytes = size_t(featuresPerRow(from)) * dtypeSize(from.dtype());
    auto *dst = static_cast<char *>(to.data());
    const auto *src = static_cast<const char *>(from.data());
    for (int64_t i = 0; i < b && rowBytes; ++i)
      std::memcpy(dst + size_t(i) * rowBytes, src + size_t(order_[size_t(pos_ + i)]) * rowBytes, rowBytes);
  };
  out.x.resize(data_.inputs.size());
  for (size_t i = 0; i < data_.inputs.size(); ++i)
    fill(data_.inputs[i], out.x[i]);
  fill(data_.y, out.y);
  pos_ += b;
  return true;
}

int64_t BatchIterator::numBatches() const { return (int64_t(order_.size()) + batchSize_ - 1) / batchSize_; }

} // namespace nnc::runtime
