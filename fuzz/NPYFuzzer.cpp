// libFuzzer target for the NumPy readers: the input is read as a .npy file
// (as f32 and as i64) and as a .npz archive whose members are then read as
// .npy. Any Error is a clean rejection; anything else (a crash, a sanitizer
// report, a huge allocation) is a bug.
#include "runtime/Npy.h"

#include <cstddef>
#include <cstdint>
#include <string>

using namespace nnc::runtime;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string bytes(reinterpret_cast<const char *>(data), size);
  for (DType want : {DType::F32, DType::I64}) {
    try {
      Tensor t = parseNpy(bytes, want, "input");
      (void)t.numel();
    } catch (const Error &) {
    }
  }
  try {
    for (const auto &[name, content] : parseNpz(bytes, "input")) {
      try {
        (void)parseNpy(content, DType::F32, name);
      } catch (const Error &) {
      }
    }
  } catch (const Error &) {
  }
  return 0;
}
