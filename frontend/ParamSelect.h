// Choosing parameters by name: one rule for every place a model file picks
// parameters — penalties (`l2(weights)`, `l1("h1")`) and the train block's
// `param_group(params = ...)`.
#pragma once

#include "frontend/Sema.h"

#include <string>
#include <vector>

namespace nnc::frontend {

/// The names of the parameters `selector` picks out of `params`, in order:
///  - a set name (`setName`): "params" (all), "weights" (all but biases),
///    "biases", "norms" (scales and shifts of layer_norm / batch_norm);
///  - otherwise a parameter's name ("h1.w") or a layer instance's ("h1":
///    every parameter under it, "h1.w", "h1.b", "h1.inner.w", ...).
/// Empty when nothing matches.
std::vector<std::string> selectParams(const std::vector<ParamInfo> &params, const std::string &selector,
                                      bool setName = false);

/// True for the set names selectParams knows.
bool isParamSetName(const std::string &name);

/// `; did you mean "h1"?` for a selector that matched nothing: the closest
/// parameter or layer instance name, or "" when none is close.
std::string paramSuggestion(const std::vector<ParamInfo> &params, const std::string &selector);

} // namespace nnc::frontend
