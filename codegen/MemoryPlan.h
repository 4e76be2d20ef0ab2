// Static buffer planning for one function specialized to concrete shapes.
// Every value gets a storage place before any code is emitted: an argument
// buffer, a result buffer (ops that produce a result write it in place), an
// immediate (scalar constants read by elementwise kernels), an alias of
// another value (reshape), a register inside a fused loop (see Fusion.h), or
// a slice of the function's single arena. Arena slices are reused once their
// value is dead (first-fit over a free list); liveness is over the fused
// steps, in the order they are emitted.
#pragma once

#include "codegen/Fusion.h"
#include "ir/IR.h"

#include <unordered_map>
#include <vector>

namespace nnc::codegen {

struct Storage {
  /// View: a slice read only by elementwise loops, which read aliasOf in
  /// place at the slice's offset (no copy).
  enum Kind { Arg, Result, Arena, Immediate, Alias, ScanStep, Fused, View } kind = Arena;
  int index = 0;                      ///< Arg / Result index
  int64_t offset = 0;                 ///< Arena: byte offset
  const ir::Value *aliasOf = nullptr; ///< Alias: the value whose storage this shares; ScanStep: the outer value
  double immediate = 0;               ///< Immediate: the constant's value (divisor applied)
  /// ScanStep (a value of a scan body that is one step of an outer value):
  /// step t of aliasOf, or for the carry, the previous step's result (or
  /// `carryInit` at the first step); `whole` for invariants.
  int64_t stepElems = 0;
  const ir::Value *carryInit = nullptr;
  bool whole = false;
  const ir::Op *scan = nullptr; ///< the scan op whose loop counter selects the step
};

struct MemoryPlan {
  std::unordered_map<const ir::Value *, Storage> storage;
  /// For each result: the argument it is written over (an optimizer update
  /// in place), or -1. Its result buffer is then not written.
  std::vector<int> resultArg;
  /// Results that need a copy (or a fill, for constants) at the end.
  std::vector<int> copiedResults;
  int64_t arenaBytes = 0;
  /// Bytes of all intermediates without reuse, to report the saving.
  int64_t unplannedBytes = 0;
  /// Arena offsets of the scratch space some kernels need while they run
  /// (see scratchBytes).
  std::unordered_map<const ir::Op *, int64_t> scratch;
  /// scan ops whose body result is not written in place at its step (it is
  /// an argument, an immediate, or, in mode sum, a partial sum to add up):
  /// where the body result lives, to be copied or added after each step.
  std::unordered_map<const ir::Op *, const ir::Value *> scanCopies;
  /// reduce_sum ops over the stack of a matmul that nothing else reads: the
  /// product is never stored; the reduction is one GEMM summing its stack.
  std::unordered_map<const ir::Op *, const ir::Op *> stackSums;
  /// matmuls in a scan body whose B is an invariant of the loop (a weight):
  /// arena offset of B packed once before the loop (runtime::GemmDesc::packedB).
  std::unordered_map<const ir::Op *, int64_t> packedB;
  /// matmuls whose product is an SGD step written over a weight: the GEMM
  /// adds (-rate) * product into `weight` (see planMemory, inPlaceUpdates).
  struct ProductUpdate {
    const ir::Value *weight = nullptr, *rate = nullptr;
  };
  std::unordered_map<const ir::Op *, ProductUpdate> productUpdates;
  /// The steps to emit, for the planned function and each scan body.
  std::unordered_map<const ir::Function *, std::vector<Step>> steps;

  /// Follows Alias (and View) links to the storage that holds the bytes.
  const Storage &resolve(const ir::Value *v) const;
  const ir::Value *root(const ir::Value *v) const;
};

/// Plans `f` under `bindings`. Two matmul patterns cost no memory: a matrix
/// broadcast over a stack that only matmuls read is an alias of the matrix
/// (the GEMM reads it with stack stride 0), and a matmul stack that only a
/// reduce_sum over its stack dimensions reads is folded into that reduction.
/// Constants read only by elementwise loops are immediates; slices read only
/// by loops and copies are views. With `inPlaceUpdates`, results named
/// "new.X" may be written over argument X (see resultArg; an SGD step may be
/// written by its gradient's product, see productUpdates), so callers must
/// bind them accordingly.
MemoryPlan planMemory(const ir::Function &f, const ir::Bindings &bindings, bool inPlaceUpdates = false);

/// Scratch bytes `op`'s kernel needs while it runs (0 for most ops): the
/// convolutions unfold their input into [C*KH*KW, OH*OW] per image (im2col).
/// A scan's scratch (its body's arena) is sized by planMemory, which plans
/// the body.
int64_t scratchBytes(const ir::Op &op, const ir::Bindings &bindings);

/// The matmuls of `scan`'s body whose B is a loop invariant, each with the
/// bytes of B packed for it.
std::vector<std::pair<const ir::Op *, int64_t>> loopInvariantProducts(const ir::Op &scan, const ir::Bindings &bindings);

/// The scalar value of a constant op under `bindings` (divisor applied).
double constantValue(const ir::Op &op, const ir::Bindings &bindings);

/// True if the codegen reads this op's operands through strided elementwise
/// access, so constant operands can be immediates.
bool readsOperandsElementwise(ir::OpKind k);

} // namespace nnc::codegen
