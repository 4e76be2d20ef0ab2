// Fuzz target: the whole frontend without the JIT — parse, name checks,
// lowering with shape checks, simplification, differentiation (of each
// objective of a GAN-style model), an optimizer update and the IR verifier.
// Any input must end in diagnostics or valid IR; a crash, a sanitizer report
// or an internal assertion is a bug.
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
    // One gradient and step for the loss, or per objective of a model whose
    // losses say what they update (as the driver builds them).
    struct Objective {
      std::string loss, suffix;
      std::vector<std::string> params;
      ir::OptimizerSpec optimizer;
    };
    std::vector<Objective> objectives;
    if (lowered->objectives.empty())
      objectives.push_back({"loss", "", {}, config ? config->optimizer : ir::OptimizerSpec()});
    for (const auto &o : lowered->objectives) {
      Objective ob{"loss." + o.name, "." + o.name, o.params, config ? config->optimizer : ir::OptimizerSpec()};
      if (config)
        for (const frontend::Phase &p : config->phases)
          if (p.loss == o.name)
            ob.optimizer = p.optimizer;
      ob.optimizer.stepName = "opt.t" + ob.suffix;
      objectives.push_back(ob);
    }
    for (const Objective &o : objectives) {
      ir::Function *grad = ir::differentiate(mod, *forward, o.loss, "grad" + o.suffix, o.params);
      ir::simplify(*grad);
      ir::Function *step = ir::appendOptimizer(mod, *grad, o.optimizer, "train_step" + o.suffix);
      ir::simplify(*step);
    }
    auto errors = ir::verify(mod);
    if (!errors.empty()) {
      std::cerr << "invalid IR from valid input: " << errors.front() << "\n" << ir::toString(mod);
      std::abort();
    }
  }
  return 0;
}
