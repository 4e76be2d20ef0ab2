// Lowering of a specialized IR function to LLVM IR: the entry point over the
// Emitter (codegen/Emitter.h, codegen/lower/), and the profile layout.
#include "codegen/LowerToLLVM.h"

#include "codegen/Emitter.h"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include <algorithm>

namespace nnc::codegen {

ProfileLayout profileLayout(const ir::Function &f) {
  ProfileLayout l;
  std::vector<const ir::Function *> bodies;
  // Gives fn's ops their slots and queues the loop bodies they run.
  auto add = [&](const ir::Function &fn) {
    for (const auto &op : fn.ops) {
      l.slot[op.get()] = l.ops.size();
      l.ops.push_back(op.get());
      l.owner.push_back(&fn);
      if (op->body && std::find(bodies.begin(), bodies.end(), op->body) == bodies.end())
        bodies.push_back(op->body);
    }
  };
  add(f);
  l.ops.push_back(nullptr); // the copying of results
  l.owner.push_back(&f);
  for (size_t i = 0; i < bodies.size(); ++i) // grows with nested bodies
    add(*bodies[i]);
  return l;
}

std::unique_ptr<llvm::Module> lowerToLLVM(const ir::Function &f, const ir::Bindings &bindings, const MemoryPlan &plan,
                                          llvm::LLVMContext &ctx, const std::string &symbol, double *profile) {
  auto m = std::make_unique<llvm::Module>("nnc." + f.name, ctx);
  Emitter(f, bindings, plan, ctx, *m, profile).emit(symbol);
  std::string err;
  llvm::raw_string_ostream os(err);
  NNC_ASSERT(!llvm::verifyModule(*m, &os)) << "invalid LLVM IR for @" << f.name << ": " << os.str();
  return m;
}

} // namespace nnc::codegen
