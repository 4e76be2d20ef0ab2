// Named passes for nnc-opt, so each pass can be tested alone on IR text.
#include "ir/transforms/Passes.h"

#include <set>

namespace nnc::ir {

namespace {

/// Functions that some scan runs as its body.
std::set<const Function *> scanBodies(const Module &m) {
  std::set<const Function *> out;
  for (auto &f : m.functions)
    for (auto &op : f->ops)
      if (op->body)
        out.insert(op->body);
  return out;
}

/// Removes the first n functions (the inputs of a pass), keeping scan bodies.
void eraseFirst(Module &m, size_t n, const std::set<const Function *> &bodies) {
  std::vector<std::unique_ptr<Function>> kept;
  for (size_t i = 0; i < m.functions.size(); ++i)
    if (i >= n || bodies.count(m.functions[i].get()))
      kept.push_back(std::move(m.functions[i]));
  m.functions = std::move(kept);
}

} // namespace

std::vector<std::string> passNames() {
  return {"autodiff", "simplify", "cse", "dce", "fold", "sgd", "momentum", "adam", "eval-mode"};
}

bool runNamedPass(Module &m, const std::string &pass, std::string &error) {
  if (pass == "eval-mode") {
    for (auto &f : m.functions)
      disableDropout(*f);
    return true;
  }
  if (pass == "simplify" || pass == "cse" || pass == "dce" || pass == "fold") {
    for (auto &f : m.functions) {
      if (pass == "simplify")
        simplify(*f);
      else if (pass == "cse")
        eliminateCommonSubexpressions(*f);
      else if (pass == "dce")
        eliminateDeadCode(*f);
      else
        simplifyAlgebra(*f);
    }
    return true;
  }
  if (pass == "autodiff") {
    // Differentiates each function's first result w.r.t. its Param arguments
    // (scan bodies are part of the functions that use them).
    size_t n = m.functions.size();
    std::set<const Function *> bodies = scanBodies(m);
    for (size_t i = 0; i < n; ++i) {
      Function &f = *m.functions[i];
      if (bodies.count(&f))
        continue;
      if (f.results.empty() || f.results[0]->type.rank() != 0 || f.results[0]->type.dtype != DType::F32) {
        error = "autodiff: the first result of @" + f.name + " must be an f32 scalar";
        return false;
      }
      for (const std::string &r : f.resultNames)
        if (r.rfind("grad.", 0) == 0) {
          error = "autodiff: @" + f.name + " already has gradient results ('" + r + "')";
          return false;
        }
      differentiate(m, f, f.resultNames[0], f.name + ".grad");
    }
    eraseFirst(m, n, bodies);
    return true;
  }
  if (pass == "sgd" || pass == "momentum" || pass == "adam") {
    OptimizerSpec spec;
    spec.kind = pass == "adam" ? OptimizerSpec::Adam : OptimizerSpec::SGD;
    if (pass == "momentum")
      spec.momentum = 0.9;
    size_t n = m.functions.size();
    std::set<const Function *> bodies = scanBodies(m);
    for (size_t i = 0; i < n; ++i) {
      Function &f = *m.functions[i];
      if (bodies.count(&f))
        continue;
      bool hasGrads = false;
      for (size_t r = 0; r < f.results.size(); ++r)
        hasGrads |= f.resultNames[r].rfind("grad.", 0) == 0;
      if (!hasGrads) {
        error = pass + ": @" + f.name + " has no grad.* results (run autodiff first)";
        return false;
      }
      appendOptimizer(m, f, spec, f.name + "." + pass);
    }
    eraseFirst(m, n, bodies);
    return true;
  }
  error = "unknown pass '" + pass + "'";
  return false;
}

} // namespace nnc::ir
