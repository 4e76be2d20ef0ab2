// Named passes for nnc-opt, so each pass can be tested alone on IR text.
#include "ir/transforms/Passes.h"

namespace nnc::ir {

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
    // Differentiates each function's first result w.r.t. its Param arguments.
    size_t n = m.functions.size();
    for (size_t i = 0; i < n; ++i) {
      Function &f = *m.functions[i];
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
    m.functions.erase(m.functions.begin(), m.functions.begin() + long(n));
    return true;
  }
  if (pass == "sgd" || pass == "momentum" || pass == "adam") {
    OptimizerSpec spec;
    spec.kind = pass == "adam" ? OptimizerSpec::Adam : OptimizerSpec::SGD;
    if (pass == "momentum")
      spec.momentum = 0.9;
    size_t n = m.functions.size();
    for (size_t i = 0; i < n; ++i) {
      Function &f = *m.functions[i];
      bool hasGrads = false;
      for (size_t r = 0; r < f.results.size(); ++r)
        hasGrads |= f.resultNames[r].rfind("grad.", 0) == 0;
      if (!hasGrads) {
        error = pass + ": @" + f.name + " has no grad.* results (run autodiff first)";
        return false;
      }
      appendOptimizer(m, f, spec, f.name + "." + pass);
    }
    m.functions.erase(m.functions.begin(), m.functions.begin() + long(n));
    return true;
  }
  error = "unknown pass '" + pass + "'";
  return false;
}

} // namespace nnc::ir
