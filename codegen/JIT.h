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
  /// With CodegenOptions::profile: seconds spent in each op (and, last, in
  /// copying results), summed over all calls.
  std::shared_ptr<std::vector<double>> profile;
};

struct CodegenOptions {
  bool optimize = true; ///< run the O3 pipeline
  bool profile = false; ///< time each op (see CompiledFunction::profile)
};

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

} // namespace nnc::codegen
