// Fuzz target: the safetensors reader. Any file must load or throw a
// runtime::Error with a message; what loads must save and load back equal.
// A training checkpoint's state (nnc.fit_state: epochs, history, the place
// in a GAN's round of phases) must parse or throw the same way, and what
// parses must print and parse back equal.
#include "fuzz/FuzzUtil.h"
#include "runtime/Checkpoint.h"
#include "runtime/Trainer.h"

#include <cstdlib>
#include <cstring>

using namespace nnc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::TempFile in(data, size, ".safetensors");
  runtime::Checkpoint ck;
  try {
    ck = runtime::loadSafetensors(in.path());
  } catch (const runtime::Error &) {
    return 0;
  }
  if (auto fs = ck.metadata.find("nnc.fit_state"); fs != ck.metadata.end()) {
    try {
      runtime::FitState st = runtime::FitState::fromJson(fs->second, "fuzz");
      runtime::FitState again = runtime::FitState::fromJson(st.toJson(), "fuzz");
      if (again.epoch != st.epoch || again.phasePos != st.phasePos || again.history.size() != st.history.size() ||
          st.phasePos < 0)
        std::abort();
    } catch (const runtime::Error &) {
    }
  }
  std::vector<std::pair<std::string, const runtime::Tensor *>> tensors;
  for (auto &[n, t] : ck.tensors)
    tensors.push_back({n, &t});
  fuzz::TempFile out(nullptr, 0, ".safetensors");
  try {
    runtime::saveSafetensors(out.path(), tensors, ck.metadata);
  } catch (const runtime::Error &) {
    return 0; // e.g. a metadata key the writer refuses
  }
  runtime::Checkpoint back = runtime::loadSafetensors(out.path());
  if (back.tensors.size() != ck.tensors.size() || back.metadata != ck.metadata)
    std::abort();
  for (auto &[n, t] : ck.tensors) {
    const runtime::Tensor &b = back.tensors.at(n);
    if (b.shape() != t.shape() || b.dtype() != t.dtype() || std::memcmp(b.data(), t.data(), t.bytes()) != 0)
      std::abort();
  }
  return 0;
}
