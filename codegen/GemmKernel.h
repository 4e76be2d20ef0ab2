// The GEMM micro-kernel (see runtime/Gemm.h for its contract), emitted as
// LLVM vector IR: MR rows x NR columns of C held in vector registers across
// the whole depth, one broadcast of A and NR / W vector loads of B per row
// and step of k, fused multiply-adds. The shape follows the vector width:
// 12 x 32 on AVX-512 (24 zmm accumulators), 6 x 16 on AVX2 (12 ymm).
#pragma once

#include <memory>
#include <string>
#include <vector>

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

/// One micro-kernel: `rows` rows of accumulators (at most tile.mr) over
/// `cols` columns. Each row count has a kernel over packed panels of tile.nr
/// columns; few rows also get a wider one for B read in place (GEMV-like
/// products, where B is read once and the wider tile keeps enough
/// independent multiply-adds in flight).
struct GemmKernelSpec {
  std::string name;
  int rows, cols;
  bool inPlace; ///< only for B read in place (its panels are `cols` wide)
};

/// The kernels for `tile`.
std::vector<GemmKernelSpec> gemmKernelSpecs(const GemmTile &tile);

/// A module defining every kernel of gemmKernelSpecs(tile), each
/// `void name(i64 K, float* A, float* B, i64 rsB, float* C, i64 ldc, i64 m,
/// i64 n, i64 accumulate)`; see runtime::GemmMicroKernel.
std::unique_ptr<llvm::Module> buildGemmKernels(llvm::LLVMContext &ctx, const GemmTile &tile);
void buildGemmKernel(llvm::Module &m, const GemmTile &tile, const GemmKernelSpec &spec);

} // namespace nnc::codegen
