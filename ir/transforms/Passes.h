// The IR passes. Each is one function with a contract; the walkers live in
// anonymous namespaces of their .cpp files.
#pragma once

#include "ir/IR.h"

#include <string>
#include <vector>

namespace nnc::ir {

/// Reverse-mode differentiation.
/// Pre: `f` is verified; its result `of` is an f32 scalar.
/// Post: returns a new function `name` in `m` with f's arguments and results,
/// followed by `grad.<arg>` = d(of)/d(arg) for every argument with role Param
/// (or named in `wrt` when non-empty). Arguments the result does not depend on
/// get a zero gradient. The original function is unchanged.
Function *differentiate(Module &m, const Function &f, const std::string &of, const std::string &name,
                        const std::vector<std::string> &wrt = {});

/// Removes ops whose results are unused. Returns true if anything changed.
bool eliminateDeadCode(Function &f);
/// Merges ops with the same kind, operands and attributes.
bool eliminateCommonSubexpressions(Function &f);
/// Constant folding and algebraic identities (x*1, x+0, neg(neg x),
/// reshape/broadcast/transpose to the same shape, chains of reshapes, ...).
bool simplifyAlgebra(Function &f);
/// Runs the three above to a fixed point.
void simplify(Function &f);

/// The optimizer update appended to a gradient function, so that one
/// function is forward + backward + update.
struct OptimizerSpec {
  enum Kind { SGD, Adam } kind = SGD;
  double momentum = 0;     ///< SGD
  bool nesterov = false;   ///< SGD
  double weightDecay = 0;  ///< L2 added to the gradient (both)
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8; ///< Adam
};

/// Names of the optimizer state tensors for one parameter.
std::vector<std::string> optimizerStateNames(const OptimizerSpec &spec, const std::string &param);

/// Pre: `grad` was made by differentiate() (results grad.<p> for each Param).
/// Post: a new function `name` whose arguments are grad's plus State tensors
/// (see optimizerStateNames, plus `opt.t` for Adam) and a Scalar `lr`; its
/// results are grad's results except the gradients, then `new.<p>` for every
/// parameter and `new.<s>` for every state.
Function *appendOptimizer(Module &m, const Function &grad, const OptimizerSpec &spec, const std::string &name);

/// Copy of `f` keeping only `results` (by name) and dropping the arguments
/// they do not use; dead code is removed.
Function *extractResults(Module &m, const Function &f, const std::vector<std::string> &results,
                         const std::string &name);

/// Evaluation mode: every mode_select takes its second (inference) operand
/// and every dropout_mask becomes a constant 1 (dropout is the identity
/// outside training); simplify() then removes what became dead or trivial.
/// Returns true if anything changed.
bool disableDropout(Function &f);

/// Looks a pass up by name for nnc-opt: "autodiff", "simplify", "cse", "dce",
/// "fold", "sgd", "adam". Returns false if unknown.
bool runNamedPass(Module &m, const std::string &pass, std::string &error);
std::vector<std::string> passNames();

} // namespace nnc::ir
