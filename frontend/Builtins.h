// The table of builtin functions: their parameters (for argument binding and
// "did you mean"), and where they may appear (model expressions or train
// blocks). Lowering rules live in Sema.cpp.
#pragma once

#include <string>
#include <vector>

namespace nnc::frontend {

struct BuiltinParam {
  const char *name;
  bool required;
};

struct Builtin {
  const char *name;
  enum Where { Model, Train } where;
  std::vector<BuiltinParam> params;
  const char *summary;
};

const std::vector<Builtin> &builtins();
const Builtin *findBuiltin(const std::string &name, Builtin::Where where);

/// "; did you mean 'lr'?" for a name that is not among `candidates`: the
/// name nnc uses for what other frameworks call `name` (learning_rate,
/// batch_size, kernel_size, out_features, ...) when that is a candidate, else
/// the closest candidate by edit distance; "" when neither helps.
std::string didYouMean(const std::string &name, const std::vector<std::string> &candidates);

} // namespace nnc::frontend
