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
std::unique_ptr<llvm::Module> lowerToLLVM(const ir::Function &f, const ir::Bindings &bindings, const MemoryPlan &plan,
                                          llvm::LLVMContext &ctx, const std::string &symbol);

} // namespace nnc::codegen
