// Fuzz target: the CSV reader. The first byte picks the label column (the
// classic loader); the second, when the file has a header, picks columns by
// name for an i64 input, an f32 input of the rest and an f32 label (the
// column loader that maps a header to a model's inputs).
#include "fuzz/FuzzUtil.h"
#include "runtime/Csv.h"
#include "runtime/Data.h"

#include <cmath>
#include <cstdlib>

using namespace nnc;

namespace {

void checkRows(const runtime::Dataset &d) {
  for (const runtime::Tensor &x : d.inputs) {
    if (x.dim(0) != d.y.dim(0))
      std::abort();
    if (x.dtype() == runtime::DType::F32)
      for (int64_t i = 0; i < x.numel(); ++i)
        if (!std::isfinite(x.f32()[i]))
          std::abort(); // the reader promises finite features
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2 || size > 100000)
    return 0;
  int64_t labelColumn = int64_t(data[0] % 8) - 1; // -1 = last
  uint8_t pick = data[1];
  fuzz::TempFile in(data + 2, size - 2, ".csv");
  try {
    checkRows(runtime::loadCSV(in.path(), labelColumn));
  } catch (const runtime::Error &) {
  }
  try {
    std::vector<std::string> header = runtime::csvHead(in.path()).names;
    if (header.empty())
      return 0;
    runtime::ColumnSelection ids{"input 'id'", runtime::DType::I64, {1}, false, {{header[pick % header.size()], 0}}};
    runtime::ColumnSelection rest{"input 'x'", runtime::DType::F32, {}, true, {}};
    runtime::ColumnSelection label{
        "label 'y'", runtime::DType::F32, {1}, false, {{header[(pick / 16) % header.size()], 0}}};
    checkRows(runtime::loadCSVColumns(in.path(), {ids, rest}, &label));
  } catch (const runtime::Error &) {
  }
  return 0;
}
