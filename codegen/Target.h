// Internal to codegen/: what the JIT (JIT.cpp) and ahead-of-time output
// (AOT.cpp) share about LLVM targets: one-time initialization, a context
// that keeps LLVM's remarks quiet, the O3 pipeline, the attributes compiled
// functions carry (CPU, features, flush-to-zero) and object emission.
#pragma once

#include <llvm/IR/LLVMContext.h>
#include <llvm/Support/Error.h>

#include <string>

namespace llvm {
class Module;
class TargetMachine;
} // namespace llvm

namespace nnc::codegen {

/// Registers the native target with LLVM, once per process.
void initLLVM();

/// An LLVMContext whose diagnostic handler drops LLVM's optimization remarks
/// and warnings ("loop not vectorized: ..."): they are about nnc's generated
/// code, which the user cannot change. NNC_LLVM_REMARKS=1 lets them through
/// for nnc's developers; errors keep LLVM's handling. Every module nnc
/// builds lives in one.
struct Context : llvm::LLVMContext {
  Context();
};

/// The message of an llvm::Error (consumed).
std::string errorText(llvm::Error e);

/// Runs the O3 pipeline for `tm` on `m` (loop unrolling off unless asked:
/// full unrolling of constant-trip loops tripled compile time and, with
/// vectorized bodies already interleaved, did not make steps faster).
void optimizeModule(llvm::Module &m, llvm::TargetMachine &tm, bool unroll = false);

/// Gives `m` tm's data layout and triple, and each function defined in it
/// tm's CPU and features and the flags compiled code runs under
/// (flush-to-zero, no unwinding, 512-bit vectors on AVX-512).
void setTargetAttributes(llvm::Module &m, llvm::TargetMachine &tm);

/// Machine code for `m` as an ELF relocatable object, by tm (each function
/// is compiled for its own target-cpu and target-features attributes).
std::string emitObjectFile(llvm::Module &m, llvm::TargetMachine &tm);

} // namespace nnc::codegen
