// Ahead-of-time output: IR functions compiled into one relocatable object
// file to link into a program or library, instead of into the JIT. The code
// is the JIT's (same lowering, memory plan and O3 pipeline); what differs is
// that the object carries every function, the GEMM micro-kernels they call,
// optionally several CPU variants of all of it, and a data blob (the
// weights). Plain C++: LLVM stays inside codegen/*.cpp.
#pragma once

#include "codegen/JIT.h"
#include "ir/IR.h"

#include <cstdint>
#include <string>
#include <vector>

namespace nnc::codegen {

/// One function to compile: `f` specialized to `bindings`, its entry (see
/// EntryFn) named `symbol` + "_" + the variant's name.
struct AotFunction {
  const ir::Function *f = nullptr;
  ir::Bindings bindings;
  std::string symbol;
  bool inPlaceUpdates = false; ///< as CodegenOptions::inPlaceUpdates
};

/// What a function compiled to: the buffers its entry takes, in order (the
/// arguments, then the results), and the scratch arena it needs.
struct AotEntry {
  std::string symbol; ///< without the variant suffix
  int64_t arenaBytes = 0;
  std::vector<BufferSpec> args, results;
  std::vector<int> resultArg; ///< as CompiledFunction::resultArg
};

/// A GEMM micro-kernel in the object (see runtime::GemmKernels).
struct AotGemmKernel {
  std::string symbol;
  int rows = 0, cols = 0;
  bool inPlace = false;
};

/// One CPU variant of the code: every entry's symbol carries "_" + name.
struct AotVariant {
  std::string name;     ///< "native", or "avx512", "avx2", "sse2" when portable
  std::string cpu;      ///< the LLVM CPU it was compiled for
  std::string features; ///< the LLVM features it may use
  int gemmRows = 0, gemmCols = 0;
  std::vector<AotGemmKernel> gemmKernels;
};

struct AotOptions {
  /// "native" (the host, as the JIT compiles), "portable" (any x86-64: an
  /// AVX-512, an AVX2 + FMA and an SSE2 variant, best first, chosen at load
  /// time), or an LLVM CPU name ("skylake-avx512", "znver3", ...).
  std::string cpu = "native";
  /// Prefix of the object's own symbols (GEMM kernels, the data blob).
  std::string prefix = "nnc";
  /// Bytes put in the object as the 64-byte-aligned constant
  /// `<prefix>_data` (with its size in `<prefix>_data_size`, an int64).
  std::string data;
};

struct AotObject {
  std::string object; ///< an ELF relocatable, position-independent
  std::vector<AotVariant> variants;
  std::vector<AotEntry> entries; ///< in the order of the functions given
};

/// Compiles `fns` for every variant `opts.cpu` names. Throws
/// std::runtime_error for a CPU LLVM does not know.
AotObject compileAhead(const std::vector<AotFunction> &fns, const AotOptions &opts);

/// The CPU names `--cpu` accepts besides native and portable (LLVM's x86-64
/// CPUs), for messages.
std::vector<std::string> knownCpus();
/// Throws std::runtime_error, listing the names it knows, unless `cpu` is
/// native, portable or one of knownCpus().
void checkCpu(const std::string &cpu);

} // namespace nnc::codegen
