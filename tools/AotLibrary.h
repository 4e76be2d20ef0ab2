// `nnc compile`: a model as a library to link. The driver's side of
// ahead-of-time output: which functions go in (predict, evaluate at the
// batch and at one row, train_step), the weights they start from, the C
// header and the C glue that describe them to the library's runtime
// (runtime/aot/nnc_aot.h), and the system tools (cc, ld, objcopy, ar, c++)
// that turn the object codegen wrote into lib<model>.a and lib<model>.so.
#pragma once

#include "codegen/AOT.h"
#include "tools/Driver.h"

#include <string>
#include <vector>

namespace nnc::driver {

struct LibraryOptions {
  std::string outDir;      ///< an existing directory
  std::string cpu;         ///< as codegen::AotOptions::cpu
  int64_t batch = 0;       ///< rows of a train step and of predict's batches
  bool weightsFile = false; ///< the weights in <model>.safetensors beside the library, read at open, not built in
};

/// What the library's entry points are, and what the header says of them.
struct LibraryApi {
  std::string prefix; ///< C identifier prefix: the model's name in lower case
  std::string guard;  ///< macro prefix: upper case
  std::vector<codegen::AotFunction> functions;
};

/// The functions a library of `m` holds at batch size `batch`.
LibraryApi libraryApi(const CompiledModel &m, int64_t batch);

/// The model's header: its types, sizes and entry points.
std::string libraryHeader(const CompiledModel &m, const LibraryApi &api, const codegen::AotObject &obj,
                          const LibraryOptions &o, const std::string &source);
/// The C glue: the description of the compiled functions for the runtime,
/// and the entry points, which call it.
std::string libraryGlue(const CompiledModel &m, const LibraryApi &api, const codegen::AotObject &obj,
                        const std::string &seedText, const std::vector<double> &scales, bool standardize);
/// The symbols the library exports (everything else is made local).
std::vector<std::string> exportedSymbols(const CompiledModel &m, const LibraryApi &api);

struct LibraryReport {
  std::vector<std::string> files; ///< written, absolute
  std::string variants;           ///< "native (sapphirerapids)" or "avx512, avx2, sse2"
  double seconds = 0;
  int64_t sharedBytes = 0;
};

/// Writes <model>.h, lib<model>.a and lib<model>.so (and the weights file
/// if asked) into o.outDir, from `session`'s current weights (and `data`'s
/// statistics); nothing is left behind in outDir on failure. Throws
/// runtime::Error.
LibraryReport buildLibrary(Session &session, const std::map<std::string, std::string> &metadata,
                           const std::map<std::string, runtime::Tensor> &dataTensors, const LibraryOptions &o,
                           const std::string &source);

} // namespace nnc::driver
