// The table of builtin functions: their parameters (for argument binding and
// "did you mean"), where they may appear (model expressions or train
// blocks), and for model builtins the Elaborator member that lowers a call
// to IR (defined in frontend/builtins/<Family>.cpp).
#pragma once

#include <string>
#include <vector>

namespace nnc::ast {
struct Expr;
}

namespace nnc::frontend {

class Elaborator;
struct Val;
struct ArgMap;

struct BuiltinParam {
  const char *name;
  bool required;
};

struct Builtin {
  const char *name;
  enum Where { Model, Train } where;
  std::vector<BuiltinParam> params;
  const char *summary;
  /// Model builtins: lowers a call whose arguments are bound to `params`.
  Val (Elaborator::*lower)(const ast::Expr &, const ArgMap &) = nullptr;
  /// What `f(...) as NAME` means: the parameters are shared under NAME
  /// (Shareable); the builtin names its parameters after the binding and
  /// cannot share them (Own); it has no parameters to share (None).
  enum Instance { None, Shareable, Own } instance = None;
};

const std::vector<Builtin> &builtins();
const Builtin *findBuiltin(const std::string &name, Builtin::Where where);

/// "; did you mean 'lr'?" for a name that is not among `candidates`: the
/// name nnc uses for what other frameworks call `name` (learning_rate,
/// batch_size, kernel_size, out_features, ...) when that is a candidate, else
/// the closest candidate by edit distance; "" when neither helps.
std::string didYouMean(const std::string &name, const std::vector<std::string> &candidates);

} // namespace nnc::frontend
