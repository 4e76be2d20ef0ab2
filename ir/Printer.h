// Textual form of the IR. The format round-trips through ir/Parser.h:
//   func @name(%x: f32[N, 64] input, %w: f32[64, 10] param) {
//     %0 = matmul %x, %w : f32[N, 10]
//     %1 = reduce_sum %0 {axes = [1], keepdims = false} : f32[N]
//     return out = %1
//   }
#pragma once

#include "ir/IR.h"

#include <ostream>
#include <string>

namespace nnc::ir {

void print(const Function &f, std::ostream &os);
void print(const Module &m, std::ostream &os);
std::string toString(const Function &f);
std::string toString(const Module &m);

} // namespace nnc::ir
