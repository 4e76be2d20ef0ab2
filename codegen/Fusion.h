// Loop fusion of elementwise ops. The code generator emits a function as a
// sequence of steps; a step is one op, or several elementwise ops over the
// same output shape computed in one loop, where a value made and used only
// inside the loop never goes to memory. The optimizer update of a parameter
// (Adam: about 14 ops per parameter) becomes one pass over it instead of 14.
#pragma once

#include "ir/IR.h"

#include <functional>
#include <unordered_set>
#include <vector>

namespace nnc::codegen {

/// Ops emitted as one unit, in program order.
using Step = std::vector<const ir::Op *>;

struct FusionPlan {
  std::vector<Step> steps;
  /// Results of fused ops that only ops of their own step read (and that are
  /// not results of the function): they live in registers.
  std::unordered_set<const ir::Value *> internal;
};

/// Groups `f`'s ops into steps. `fusable(op)` says whether op may join a
/// loop (elementwise, reads its operands at strided indices, has storage of
/// its own); `emitsNothing(op)` marks views and folded constants, which are
/// left out of the steps; `root(v)` follows views to the value holding the
/// bytes.
FusionPlan planFusion(const ir::Function &f, const ir::Bindings &bindings,
                      const std::function<bool(const ir::Op &)> &fusable,
                      const std::function<bool(const ir::Op &)> &emitsNothing,
                      const std::function<const ir::Value *(const ir::Value *)> &root);

} // namespace nnc::codegen
