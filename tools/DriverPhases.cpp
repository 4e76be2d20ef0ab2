// The IR functions of a model with several objectives (a GAN): one gradient
// and one train step per phase, each differentiating its own loss with
// respect to the parameters that loss updates only. The discriminator's step
// thus computes no generator gradient (the "detach" is implied), and the
// generator's differentiates through the discriminator without updating it.
#include "tools/Driver.h"

#include "ir/Verifier.h"

#include <algorithm>
#include <unordered_set>

namespace nnc::driver {

std::vector<frontend::Phase> CompiledModel::phases() const {
  // Without a train block read (nnc check, predict): one phase per objective.
  return config.phases.empty() ? frontend::defaultPhases(lowered, config) : config.phases;
}

std::vector<std::string> CompiledModel::trainSteps() const {
  if (lowered.objectives.empty())
    return {"train_step"};
  std::vector<std::string> r;
  for (const frontend::Phase &p : phases())
    r.push_back("train_step." + p.loss);
  return r;
}

void CompiledModel::buildPhaseFunctions(ir::Function &fwd) {
  // Functions in the order nnc emit shows them: forward, the gradients, the
  // steps, evaluate, predict; loop bodies after them; temporaries dropped.
  std::vector<ir::Function *> order = {&fwd}, steps, temporary;
  for (const frontend::Phase &p : phases()) {
    const auto &o = *std::find_if(lowered.objectives.begin(), lowered.objectives.end(),
                                  [&](const frontend::LoweredModel::Objective &x) { return x.name == p.loss; });
    std::string loss = "loss." + o.name;
    ir::Function *grad = ir::differentiate(module, fwd, loss, "grad." + o.name, o.params);
    ir::simplify(*grad);
    // The model's own state (batch-norm statistics) moves in this phase
    // where its loss runs through it.
    ir::Function *lossOnly = ir::extractResults(module, fwd, {loss}, "tmp.loss." + o.name);
    std::vector<std::string> keep = {loss};
    for (size_t i = 0; i < lossOnly->args.size(); ++i)
      if (lossOnly->argRoles[i] == ir::ArgRole::State && fwd.result("new." + lossOnly->args[i]->name))
        keep.push_back("new." + lossOnly->args[i]->name);
    ir::Function *step = ir::appendOptimizer(module, *grad, p.optimizer, "tmp.step." + o.name);
    for (size_t i = 0; i < step->results.size(); ++i) {
      const std::string &n = step->resultNames[i];
      if (n.rfind("new.", 0) == 0 && !fwd.result(n))
        keep.push_back(n); // parameters and optimizer state
    }
    ir::Function *trainStep = ir::extractResults(module, *step, keep, "train_step." + o.name);
    ir::simplify(*trainStep);
    order.push_back(grad);
    steps.push_back(trainStep);
    temporary.insert(temporary.end(), {lossOnly, step});
  }
  order.insert(order.end(), steps.begin(), steps.end());
  ir::Function *infer = ir::extractResults(module, fwd, fwd.resultNames, "inference");
  ir::disableDropout(*infer);
  ir::simplify(*infer);
  std::vector<std::string> evalResults;
  for (const auto &o : lowered.objectives)
    evalResults.push_back("loss." + o.name);
  ir::Function *eval = ir::extractResults(module, *infer, evalResults, "evaluate");
  ir::simplify(*eval);
  order.push_back(eval);
  temporary.push_back(infer);
  if (!lowered.outputs.empty()) {
    ir::Function *pred = ir::extractResults(module, *infer, lowered.outputs, "predict");
    ir::simplify(*pred);
    order.push_back(pred);
  }
  std::vector<std::unique_ptr<ir::Function>> kept;
  for (ir::Function *f : order)
    for (auto &g : module.functions)
      if (g.get() == f)
        kept.push_back(std::move(g));
  for (auto &g : module.functions)
    if (g && std::find(temporary.begin(), temporary.end(), g.get()) == temporary.end())
      kept.push_back(std::move(g));
  module.functions = std::move(kept);
  auto errs = ir::verify(module);
  NNC_ASSERT(errs.empty()) << "pipeline produced invalid IR: " << errs.front();
}

} // namespace nnc::driver
