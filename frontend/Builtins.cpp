// Builtin function table. Keep in step with docs/LANGUAGE.md.
#include "frontend/Builtins.h"

namespace nnc::frontend {

const std::vector<Builtin> &builtins() {
  static const std::vector<Builtin> table = {
      // Layers and linear algebra
      {"dense", Builtin::Model, {{"x", true}, {"units", true}, {"bias", false}, {"init", false}}, "x W + b with W [K, units]"},
      {"matmul", Builtin::Model, {{"a", true}, {"b", true}}, "matrix product"},
      // Activations and elementwise math
      {"relu", Builtin::Model, {{"x", true}}, "max(x, 0)"},
      {"sigmoid", Builtin::Model, {{"x", true}}, "1 / (1 + exp(-x))"},
      {"tanh", Builtin::Model, {{"x", true}}, "hyperbolic tangent"},
      {"exp", Builtin::Model, {{"x", true}}, "e^x"},
      {"log", Builtin::Model, {{"x", true}}, "natural logarithm"},
      {"sqrt", Builtin::Model, {{"x", true}}, "square root"},
      {"abs", Builtin::Model, {{"x", true}}, "absolute value"},
      {"maximum", Builtin::Model, {{"a", true}, {"b", true}}, "elementwise maximum"},
      {"softmax", Builtin::Model, {{"x", true}}, "softmax over the last axis"},
      {"log_softmax", Builtin::Model, {{"x", true}}, "log of softmax over the last axis, stable"},
      // Reductions
      {"sum", Builtin::Model, {{"x", true}, {"axis", false}, {"keepdims", false}}, "sum over axes (default all)"},
      {"mean", Builtin::Model, {{"x", true}, {"axis", false}, {"keepdims", false}}, "mean over axes (default all)"},
      {"max", Builtin::Model, {{"x", true}, {"axis", false}, {"keepdims", false}}, "maximum over axes (default all)"},
      // Shapes
      {"reshape", Builtin::Model, {{"x", true}, {"shape", true}}, "same elements, new shape"},
      {"flatten", Builtin::Model, {{"x", true}}, "[N, ...] -> [N, prod(...)]"},
      {"transpose", Builtin::Model, {{"x", true}, {"perm", false}}, "permute axes (default reverse)"},
      // Losses and penalties
      {"cross_entropy", Builtin::Model, {{"logits", true}, {"labels", true}}, "mean negative log-likelihood of softmax(logits)"},
      {"mse", Builtin::Model, {{"pred", true}, {"target", true}}, "mean squared error"},
      {"l1", Builtin::Model, {{"x", true}}, "sum of absolute values"},
      {"l2", Builtin::Model, {{"x", true}}, "sum of squares"},
      // Train blocks: data
      {"csv", Builtin::Train, {{"path", true}, {"label", false}}, "numeric CSV, one example per row"},
      {"idx", Builtin::Train, {{"images", true}, {"labels", true}}, "IDX image and label files (gzipped or raw)"},
      {"scale", Builtin::Train, {{"data", true}, {"factor", true}}, "multiply every feature by factor"},
      {"standardize", Builtin::Train, {{"data", true}}, "per-feature zero mean, unit variance (training-set statistics)"},
      {"shuffle", Builtin::Train, {{"data", true}}, "reshuffle every epoch (seeded)"},
      {"batch", Builtin::Train, {{"data", true}, {"size", true}}, "mini-batches of size examples"},
      // Train blocks: optimizers and control
      {"sgd", Builtin::Train, {{"lr", false}, {"momentum", false}, {"nesterov", false}, {"weight_decay", false}}, "stochastic gradient descent"},
      {"adam", Builtin::Train, {{"lr", false}, {"beta1", false}, {"beta2", false}, {"eps", false}, {"weight_decay", false}}, "Adam"},
      {"early_stop", Builtin::Train, {{"monitor", false}, {"patience", false}, {"min_delta", false}}, "stop when a metric stops improving"},
  };
  return table;
}

const Builtin *findBuiltin(const std::string &name, Builtin::Where where) {
  for (const Builtin &b : builtins())
    if (b.where == where && name == b.name)
      return &b;
  return nullptr;
}

} // namespace nnc::frontend
