// Fuzz target: the CSV reader, with the label column chosen by the first byte.
#include "fuzz/FuzzUtil.h"
#include "runtime/Data.h"

#include <cmath>
#include <cstdlib>

using namespace nnc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 100000)
    return 0;
  int64_t labelColumn = int64_t(data[0] % 8) - 1; // -1 = last
  fuzz::TempFile in(data + 1, size - 1, ".csv");
  try {
    runtime::Dataset d = runtime::loadCSV(in.path(), labelColumn);
    if (d.x.dim(0) != d.y.dim(0))
      std::abort();
    for (int64_t i = 0; i < d.x.numel(); ++i)
      if (!std::isfinite(d.x.f32()[i]))
        std::abort(); // the reader promises finite features
  } catch (const runtime::Error &) {
  }
  return 0;
}
