// Fuzz target: the whole frontend without the JIT — parse, name checks,
// lowering with shape checks, simplification, differentiation, an optimizer
// update and the IR verifier. Any input must end in diagnostics or valid IR;
// a crash, a sanitizer report or an internal assertion is a bug.
#include "frontend/ASTBuilder.h"
#include "frontend/Sema.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "ir/transforms/Passes.h"

#include <cstdlib>
#include <iostream>

using namespace nnc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 20000)
    return 0; // long inputs only slow the search down
  SourceFile file{"fuzz.nn", std::string(reinterpret_cast<const char *>(data), size)};
  DiagnosticEngine diags(nullptr);
  auto program = frontend::parseProgram(file, diags);
  if (!program || !frontend::checkProgram(*program, diags))
    return 0;
  for (const ast::ModelDecl &m : program->models) {
    auto lowered = frontend::lowerModel(*program, m, diags);
    if (!lowered)
      continue;
    auto config = frontend::readTrainConfig(*program, *lowered, "/nonexistent", diags);
    ir::Module &mod = *lowered->module;
    ir::Function *forward = mod.get("forward");
    ir::simplify(*forward);
    ir::Function *grad = ir::differentiate(mod, *forward, "loss", "grad");
    ir::simplify(*grad);
    ir::Function *step =
        ir::appendOptimizer(mod, *grad, config ? config->optimizer : ir::OptimizerSpec(), "train_step");
    ir::simplify(*step);
    auto errors = ir::verify(mod);
    if (!errors.empty()) {
      std::cerr << "invalid IR from valid input: " << errors.front() << "\n" << ir::toString(mod);
      std::abort();
    }
  }
  return 0;
}
