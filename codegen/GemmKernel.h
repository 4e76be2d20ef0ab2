// The GEMM micro-kernel (see runtime/Gemm.h for its contract), emitted as
// LLVM vector IR: MR rows x NR columns of C held in vector registers across
// the whole depth, one broadcast of A and NR / W vector loads of B per row
// and step of k, fused multiply-adds. The shape follows the vector width:
// 12 x 32 on AVX-512 (24 zmm accumulators), 6 x 16 on AVX2 (12 ymm).
#pragma once

#include <memory>
#include <string>

namespace llvm {
class LLVMContext;
class Module;
} // namespace llvm

namespace nnc::codegen {

struct GemmTile {
  int mr, nr, width; ///< rows, columns, floats per vector
};

/// The tile for a CPU with these LLVM target features ("+avx512f,...").
GemmTile gemmTileFor(const std::string &features);

/// A module defining `void name(i64 K, float* A, float* B, i64 rsB, float* C,
/// i64 ldc, i64 m, i64 n, i64 accumulate)`; see runtime::GemmMicroKernel.
std::unique_ptr<llvm::Module> buildGemmMicroKernel(llvm::LLVMContext &ctx, const GemmTile &tile,
                                                   const std::string &name);

} // namespace nnc::codegen
