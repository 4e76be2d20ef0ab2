// The values of the constant-table ops (causal_mask, sinusoid): one
// definition, read by the LLVM lowering and by the ONNX exporter.
#pragma once

#include "ir/IR.h"

#include <vector>

namespace nnc::ir {

/// Every element of `op` (a CausalMask or Sinusoid) at its static shape,
/// row-major over the last two axes repeated along any leading ones:
///   causal_mask: `value` where column j > row i + `offset`, else 0;
///   sinusoid:    PE[t, 2k] = sin(t / 10000^(2k/D)), PE[t, 2k+1] = cos(...).
std::vector<float> tableValues(const Op &op);

} // namespace nnc::ir
