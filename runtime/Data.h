// Data sources and the input pipeline: IDX (MNIST-style) and CSV loaders,
// scaling and standardization, a seeded train/validation split, and the batch
// iterator the trainer draws minibatches from. Everything seeded here gives
// the same result on every standard library, so runs are reproducible.
#pragma once

#include "runtime/Tensor.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace nnc::runtime {

/// A labelled data set of n examples: one tensor [n, ...] per model input
/// (of any dtype, in the model's input order) and targets y [n, ...] of any
/// dtype. Images give f32 x and i64 class indices y [n] in [0, numClasses);
/// CSV columns give f32 or i64 inputs and i64 classes or f32 targets of any
/// shape; text gives i64 byte windows for both.
struct Dataset {
  std::vector<Tensor> inputs = std::vector<Tensor>(1);
  Tensor y;
  int64_t numClasses = 0;
  /// [C, H, W] of each row when the loader knows it (IDX images: [1, rows,
  /// cols]); empty otherwise. Only loaders set it.
  std::vector<int64_t> imageShape;

  /// The first (often the only) input.
  Tensor &x() { return inputs.at(0); }
  const Tensor &x() const { return inputs.at(0); }
  /// Number of rows (examples).
  int64_t size() const { return !inputs.empty() && inputs[0].rank() ? inputs[0].dim(0) : 0; }
};

/// One minibatch: a tensor [b, ...] per input, and the targets.
struct Batch {
  std::vector<Tensor> x;
  Tensor y;
};

/// Loads an IDX image file (magic 0x00000803, u8 [n, rows, cols]) and an IDX
/// label file (magic 0x00000801, u8 [n]), each gzipped or raw. x becomes f32
/// [n, rows*cols] with the raw 0..255 values; numClasses is max label + 1.
/// Throws Error naming the file and the problem (bad magic, truncated data,
/// count mismatch, ...).
/// An empty `labelsPath` loads the images alone (y all zeros, numClasses 1).
/// With `realTargets`, the labels file is read by loadIDXArray instead: y is
/// f32 [n, ...] (regression, binary or multi-label targets), numClasses 0.
Dataset loadIDX(const std::string &imagesPath, const std::string &labelsPath, bool realTargets = false);

/// Reads an IDX file of any element type (u8, i8, i16, i32, f32, f64, all
/// big-endian) and rank as f32 [d0, d1, ...], gzipped or raw. Throws Error
/// naming the file and the problem.
Tensor loadIDXArray(const std::string &path);

/// Loads a numeric CSV file (optionally gzipped). `labelColumn` is the 0-based
/// column holding non-negative integer labels, -1 for the last one; the other
/// columns become x as f32 [n, columns-1]. The first row is skipped as a
/// header when `header` is true, and also when it has a non-numeric field.
/// Errors are prefixed with "<path>:<line>:".
/// labelColumn kNoLabelColumn reads every column as a feature (y is all
/// zeros, numClasses 0): inputs to predict on.
Dataset loadCSV(const std::string &path, int64_t labelColumn = -1, bool header = false);
constexpr int64_t kNoLabelColumn = -2;

/// Reads a text file (optionally gzipped) as bytes and cuts it into windows
/// of `context` + 1 bytes starting every `stride` bytes: x = i64 bytes [n,
/// context] and y = the next byte at each position (x shifted by one), for
/// next-character language models over 256 byte values (numClasses = 256).
Dataset loadText(const std::string &path, int64_t context, int64_t stride);

/// Values per example of a tensor [n, ...]: the product of its dims after the first.
int64_t featuresPerExample(const Tensor &x);

/// The whole of a file, gunzipped if it is gzipped. Throws Error naming it.
std::string readGzipOrRaw(const std::string &path);
/// Its first `bytes` bytes (fewer when it is shorter), gunzipped.
std::string readGzipOrRawPrefix(const std::string &path, size_t bytes);

/// The splitmix64 finalizer of z + the golden ratio: a well-mixed 64-bit
/// value, the same on every platform (seeds of shuffles and augmentation).
uint64_t mix64(uint64_t z);

/// Multiplies every feature of the f32 inputs by `factor` (e.g. 1/255 for
/// 8-bit pixels); integer inputs (ids) are left alone. Throws Error when no
/// input is f32.
void scale(Dataset &data, float factor);

/// Per-feature mean and standard deviation, fitted on training data and then
/// applied unchanged to validation and test data.
struct Standardizer {
  std::vector<float> mean;
  std::vector<float> stddev;
};

/// Population mean and standard deviation of each feature of x ([n, ...]),
/// over the rows. A feature constant over the rows (standard deviation at
/// most 1e-7) gets a divisor of 1, so it maps to 0 and other rows keep their
/// distance from it instead of being multiplied by ~1e7.
Standardizer fitStandardizer(const Tensor &x);

/// Min-max scaling as a Standardizer: mean = each feature's minimum over
/// the rows, stddev = its range (1 for a constant feature, as in
/// fitStandardizer), so that applying it maps the training rows to [0, 1].
Standardizer fitMinMax(const Tensor &x);

/// The statistics of every f32 input of `data` (fitStandardizer or, with
/// `minMax`, fitMinMax), their features concatenated in input order; integer
/// inputs have none. applyStandardizer(s, data) applies them.
Standardizer fitStandardizer(const Dataset &data, bool minMax);
void applyStandardizer(const Standardizer &s, Dataset &data);

/// Replaces class labels i64[n] by f32 one-hot rows [n, classes]. Throws
/// Error for a label outside [0, classes).
void oneHotLabels(Dataset &data, int64_t classes);

/// x = (x - mean) / stddev per feature. Throws Error if the feature count
/// differs from the one the standardizer was fitted on.
void applyStandardizer(const Standardizer &s, Tensor &x);

/// Shuffles the row indices with a Fisher-Yates shuffle driven by
/// std::mt19937_64(seed) and splits them into (train, validation); the last
/// round(n * fraction) shuffled rows form the validation set. fraction must be
/// in [0, 1).
std::pair<Dataset, Dataset> splitValidation(const Dataset &data, double fraction, uint64_t seed);

/// The first min(n, size) rows of `data`.
Dataset take(const Dataset &data, int64_t n);

/// Walks a data set in minibatches of `batchSize` rows. The last batch of an
/// epoch holds the remaining rows (it is smaller, never dropped). With
/// shuffling on, each epoch's order depends only on (seed, epoch).
/// The data set must outlive the iterator.
class BatchIterator {
public:
  BatchIterator(const Dataset &data, int64_t batchSize, bool shuffle, uint64_t seed);

  /// Starts a new epoch, reshuffling the row order from (seed, epoch) when
  /// shuffling is on.
  void reset(uint64_t epoch);

  /// Fills xb and yb (the dtypes of the data, [b, ...]; a data set of one
  /// input) with the next batch and returns true, or returns false at the end of the epoch. The tensors are
  /// reallocated only when their shape has to change.
  bool next(Tensor &xb, Tensor &yb);
  /// The same for a data set of any number of inputs.
  bool next(Batch &b);

  /// Batches per epoch: ceil(size / batchSize).
  int64_t numBatches() const;

  int64_t batchSize() const { return batchSize_; }

private:
  const Dataset &data_;
  int64_t batchSize_;
  bool shuffle_;
  uint64_t seed_;
  std::vector<int64_t> order_;
  int64_t pos_ = 0;
};

} // namespace nnc::runtime
