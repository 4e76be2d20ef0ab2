// The IR passes. Each is one function with a contract; the walkers live in
// anonymous namespaces of their .cpp files.
#pragma once

#include "ir/IR.h"

#include <map>
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

/// Reverse mode inside a function, for gradients that are values of the
/// model (a gradient penalty): appends to `f` the ops of d(of)/d(wrt), for
/// `of` an f32 scalar of `f` and `wrt` any value before it, and returns that
/// gradient in `grad`. The ops are ordinary IR, so differentiate() can
/// differentiate them again. When `of` does not depend on `wrt` through
/// differentiable ops, `grad` is null and `blockedBy` is the first op without
/// a gradient on a path between them (null when there is no path at all).
struct InlineGradient {
  Value *grad = nullptr;
  const Op *blockedBy = nullptr;
};
InlineGradient gradientOf(Module &m, Function &f, Value *of, Value *wrt);

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
/// Per-parameter settings (a parameter group in PyTorch's terms).
struct ParamSettings {
  double weightDecay = 0;
  double lrScale = 1; ///< the parameter's step uses lr * lrScale
};

/// One optimizer, written to match PyTorch's torch.optim update rules.
struct OptimizerSpec {
  enum Kind { SGD, Adam, AdamW, RMSProp, Adagrad } kind = SGD;
  double momentum = 0;     ///< SGD, RMSProp
  bool nesterov = false;   ///< SGD
  double weightDecay = 0;  ///< added to the gradient as wd * p (AdamW: p *= 1 - lr * wd)
  double beta1 = 0.9, beta2 = 0.999; ///< Adam, AdamW
  double eps = 1e-8;       ///< Adam, AdamW, RMSProp (1e-8), Adagrad (1e-10)
  double alpha = 0.99;     ///< RMSProp's smoothing constant
  bool centered = false;   ///< RMSProp: divide by the variance, not the second moment
  double clipNorm = 0;     ///< > 0: scale all gradients so their joint L2 norm is at most this
  double clipValue = 0;    ///< > 0: clamp every gradient element to [-clipValue, clipValue]
  /// Overrides of weightDecay and the learning rate by parameter name.
  std::map<std::string, ParamSettings> perParam;
  /// The name of Adam's step count (a State tensor): several optimizers in
  /// one model (a GAN's phases) count their steps apart, "opt.t.<phase>".
  std::string stepName = "opt.t";
  /// Where the train block chooses the optimizer; the update's ops carry it
  /// (so that `nnc bench --profile` can point at it).
  SourceLoc loc;

  ParamSettings settingsFor(const std::string &param) const {
    auto it = perParam.find(param);
    return it != perParam.end() ? it->second : ParamSettings{weightDecay, 1};
  }
  static const char *name(Kind k);
};

/// Names of the optimizer state tensors for one parameter.
std::vector<std::string> optimizerStateNames(const OptimizerSpec &spec, const std::string &param);
/// True for the name of any optimizer's state tensor (for checkpoints written
/// with another optimizer).
bool isOptimizerStateName(const std::string &name);

/// Pre: `grad` was made by differentiate() (results grad.<p> for each Param).
/// Post: a new function `name` whose arguments are grad's plus State tensors
/// (see optimizerStateNames, plus the step count spec.stepName for Adam and AdamW)
/// and a Scalar `lr`; its results are grad's results except the gradients,
/// then `new.<p>` for every parameter and `new.<s>` for every state.
/// Gradients are clipped (spec.clipValue, then spec.clipNorm) before weight
/// decay is added, as clip_grad_*_ before optimizer.step() does in PyTorch.
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
