// The IR verifier: every operand is defined before its use, every op's type
// is what its shape rule says, results are defined and uniquely named. Run
// after every pass in debug builds and by `nnc-opt --verify`.
#pragma once

#include "ir/IR.h"

#include <string>
#include <vector>

namespace nnc::ir {

/// Returns the problems found (empty if the function is well formed).
std::vector<std::string> verify(const Function &f);
std::vector<std::string> verify(const Module &m);

} // namespace nnc::ir
