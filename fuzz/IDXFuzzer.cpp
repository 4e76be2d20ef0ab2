// Fuzz target: the IDX reader (raw or gzipped). The input is split in two at
// a position given by its first byte: an image file and a label file, read as
// classes and then as real targets (an IDX array of any type and rank).
#include "fuzz/FuzzUtil.h"
#include "runtime/Data.h"

#include <cstdlib>

using namespace nnc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t cut = 1 + (size - 1) * data[0] / 255;
  fuzz::TempFile images(data + 1, cut - 1), labels(data + cut, size - cut);
  try {
    runtime::Dataset d = runtime::loadIDX(images.path(), labels.path());
    if (d.x().dim(0) != d.y.dim(0))
      std::abort();
    for (int64_t i = 0; i < d.size(); ++i)
      if (d.y.i64()[i] < 0 || d.y.i64()[i] >= d.numClasses)
        std::abort();
  } catch (const runtime::Error &) {
  }
  try {
    runtime::Dataset d = runtime::loadIDX(images.path(), labels.path(), /*realTargets=*/true);
    if (d.y.dtype() != runtime::DType::F32 || d.x().dim(0) != d.y.dim(0))
      std::abort();
  } catch (const runtime::Error &) {
  }
  return 0;
}
