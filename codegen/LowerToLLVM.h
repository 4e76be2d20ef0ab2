// Internal to codegen/: IR function + memory plan -> LLVM module.
#pragma once

#include "codegen/MemoryPlan.h"
#include "ir/IR.h"

#include <memory>
#include <string>
#include <unordered_map>

namespace llvm {
class LLVMContext;
class Module;
} // namespace llvm

namespace nnc::codegen {

/// Where a profiled function keeps each op's time: f's op i in slot i, the
/// copying of results in slot f.ops.size(), then the ops of each loop body
/// (scan bodies, nested ones too), body by body.
struct ProfileLayout {
  std::unordered_map<const ir::Op *, size_t> slot;
  std::vector<const ir::Op *> ops;         ///< by slot; null for the copying of results
  std::vector<const ir::Function *> owner; ///< by slot: the function the op is in
  size_t size() const { return ops.size(); }
};
ProfileLayout profileLayout(const ir::Function &f);

/// Emits `symbol` (see EntryFn in JIT.h) computing `f` under `bindings`.
/// With `profile`, the code adds the seconds spent in each op to its slot
/// of `profile` (see ProfileLayout); a loop's own slot gets its time outside
/// the body's ops.
std::unique_ptr<llvm::Module> lowerToLLVM(const ir::Function &f, const ir::Bindings &bindings, const MemoryPlan &plan,
                                          llvm::LLVMContext &ctx, const std::string &symbol, double *profile = nullptr);

} // namespace nnc::codegen
