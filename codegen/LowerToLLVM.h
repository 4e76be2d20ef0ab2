// Internal to codegen/: IR function + memory plan -> LLVM module.
#pragma once

#include "codegen/MemoryPlan.h"
#include "ir/IR.h"

#include <memory>
#include <string>

namespace llvm {
class LLVMContext;
class Module;
} // namespace llvm

namespace nnc::codegen {

/// Emits `symbol` (see EntryFn in JIT.h) computing `f` under `bindings`.
/// With `profile`, the code adds the seconds spent in op i to profile[i]
/// (f.ops.size() + 1 slots; the last is the copying of results).
std::unique_ptr<llvm::Module> lowerToLLVM(const ir::Function &f, const ir::Bindings &bindings, const MemoryPlan &plan,
                                          llvm::LLVMContext &ctx, const std::string &symbol, double *profile = nullptr);

} // namespace nnc::codegen
