// Native code for IR functions: lowering to LLVM IR with every shape constant,
// the O3 pipeline for the host CPU, and ORC LLJIT. LLVM headers stay inside
// codegen/*.cpp; this header is plain C++ so the rest of nnc never sees them.
#pragma once

#include "ir/IR.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace nnc::codegen {

/// The calling convention of every compiled function: `buffers` holds one
/// pointer per argument, then one per result; `arena` is scratch memory of
/// `arenaBytes` bytes, 64-byte aligned, owned by the caller and reused.
using EntryFn = void (*)(void **buffers, char *arena);

struct BufferSpec {
  std::string name;
  ir::DType dtype;
  std::vector<int64_t> shape;
  ir::ArgRole role = ir::ArgRole::Input; ///< arguments only
};

struct CompiledFunction {
  std::string name;
  EntryFn entry = nullptr;
  int64_t arenaBytes = 0;
  int64_t unplannedBytes = 0; ///< intermediates' total size without reuse
  std::vector<BufferSpec> args, results;
  double compileSeconds = 0;
  /// Per result: the argument it was written over instead of its own buffer
  /// (-1: its own buffer).
  std::vector<int> resultArg;
  /// Loaded from the on-disk compile cache instead of compiled.
  bool fromCache = false;
  /// With CodegenOptions::profile: seconds spent in each op, summed over all
  /// calls, by slot: the function's ops, the copying of results, then the ops
  /// of loop bodies (a loop's own slot has its time outside its body's ops).
  std::shared_ptr<std::vector<double>> profile;
  /// By slot: how many ops its loop computes (more than 1 when elementwise
  /// ops were fused into it; 0 for ops computed in another's loop).
  std::vector<int> profileOps;
  /// By slot: the op as printed, prefixed with "in @body:" inside a loop body.
  std::vector<std::string> profileLabels;
  /// By slot: where in the .nn source the op came from (invalid if nowhere:
  /// the copying of results, an optimizer update).
  std::vector<SourceLoc> profileLocs;
};

struct CodegenOptions {
  bool optimize = true; ///< run the O3 pipeline
  bool profile = false; ///< time each op (see CompiledFunction::profile)
  /// Write updates ("new.X" results) over their arguments where safe (see
  /// CompiledFunction::resultArg).
  bool inPlaceUpdates = false;
};

/// Compiled functions are kept as object files in an on-disk cache, keyed by
/// a hash of the IR, the batch bindings, the CPU and the nnc build, so a
/// second run of the same model skips code generation. The directory is
/// $NNC_CACHE_DIR, else $XDG_CACHE_HOME/nnc, else ~/.cache/nnc; NNC_CACHE=off
/// turns it off.
class JIT {
public:
  /// Creates a JIT for the host CPU; throws std::runtime_error if LLVM
  /// cannot target it.
  JIT();
  ~JIT();
  JIT(const JIT &) = delete;
  JIT &operator=(const JIT &) = delete;

  /// Compiles `f` specialized to `bindings` (every symbolic dimension bound).
  CompiledFunction compile(const ir::Function &f, const ir::Bindings &bindings, const CodegenOptions &opts = {});

  /// The LLVM IR of `f` (after the O3 pipeline if opts.optimize).
  std::string emitLLVM(const ir::Function &f, const ir::Bindings &bindings, const CodegenOptions &opts = {});
  /// Host assembly of `f`.
  std::string emitAssembly(const ir::Function &f, const ir::Bindings &bindings, const CodegenOptions &opts = {});

  /// "znver3 (+avx512f, ...)" — what code is generated for.
  std::string targetDescription() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// What the JIT compiles for on this machine, for `nnc --version`: LLVM's
/// version, the host CPU's name and triple, and the vector features among
/// those nnc's code uses (sse4.2, avx, avx2, fma, avx512*) that it has.
struct HostTarget {
  std::string llvmVersion, cpu, triple;
  std::vector<std::string> features;
};
HostTarget hostTarget();

} // namespace nnc::codegen
