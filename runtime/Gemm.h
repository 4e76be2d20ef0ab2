// Single-precision matrix products for compiled code: C (+)= A * B over a
// stack of matrices, any strides for A and B. The innermost computation is a
// register-blocked micro-kernel that the code generator emits as LLVM vector
// IR for the host CPU (codegen/GemmKernel.cpp) and registers here; this file
// is the blocking around it: cache blocks of K, packing of B into
// contiguous panels when they are reused, and the split over threads.
#pragma once

#include <cstdint>

namespace nnc::runtime {

/// C[b](i, j) (+)= sum_k A[b](i, k) * B[b](k, j), where
///   A[b](i, k) = A[b * bsA + i * rsA + k * csA]
///   B[b](k, j) = B[b * bsB + k * rsB + j * csB]
///   C[b](i, j) = C[b * bsC + i * ldc + j]
/// With bsC == 0 the products of the stack are summed: C (+)= sum_b A[b] B[b].
/// With packedB (batch 1 only), B is not the matrix but its copy made by
/// nnc_rt_sgemm_pack_b for this descriptor: a B read by many products (a
/// loop's weight) is packed once.
/// The layout is an array of int64 so compiled code can pass a constant.
struct GemmDesc {
  int64_t batch, M, N, K;
  int64_t rsA, csA, bsA;
  int64_t rsB, csB, bsB;
  int64_t ldc, bsC;
  int64_t accumulate; ///< 1: C += A * B, 0: C = A * B
  int64_t packedB;    ///< 1: B was packed by nnc_rt_sgemm_pack_b
};

/// Floats of B packed for a product with this K and N (see GemmDesc::packedB)
/// under the installed kernels.
int64_t packedBFloats(int64_t K, int64_t N);

/// The widest micro-kernel panel any CPU's kernels use (AVX-512: 32).
constexpr int kMaxGemmCols = 32;
/// Floats that hold B packed under any CPU's kernels (panels of at most
/// kMaxGemmCols columns): what compiled code reserves, so that code
/// compiled for one CPU and run with another's kernels (ahead-of-time
/// libraries with several variants) never packs past its space.
int64_t packedBFloatsBound(int64_t K, int64_t N);

/// A micro-kernel: C[r * ldc + j] (+)= sum_k A[k * MR + r] * B[k * rsB + j]
/// for r < m rows (at most the kernel's) and j < n columns (at most the
/// kernel's). A is a packed panel (MR values per k, MR the largest kernel's
/// rows); B's rows are contiguous and are read only below n (masked).
using GemmMicroKernel = void (*)(int64_t K, const float *A, const float *B, int64_t rsB, float *C, int64_t ldc,
                                 int64_t m, int64_t n, int64_t accumulate);

constexpr int kMaxGemmRows = 16;

/// The micro-kernels of one CPU: for each row count m <= mr, a kernel over
/// packed panels of nr columns, and one for B read in place over panels of
/// inPlaceCols[m] columns (it may be the same kernel).
struct GemmKernels {
  int mr = 0, nr = 0;
  GemmMicroKernel packed[kMaxGemmRows + 1] = {};
  GemmMicroKernel inPlace[kMaxGemmRows + 1] = {};
  int inPlaceCols[kMaxGemmRows + 1] = {};
};

/// Installs the micro-kernels. Until then, a portable scalar kernel is used.
void setGemmKernels(const GemmKernels &kernels);
/// The installed tile, as "MRxNR".
const char *gemmTile();

/// C = A * B with row-major, dense operands (for tests and tools).
void sgemm(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C);

} // namespace nnc::runtime

/// Entry point for compiled code; see GemmDesc.
extern "C" void nnc_rt_sgemm(const nnc::runtime::GemmDesc *desc, const float *A, const float *B, float *C);
/// C (+)= alpha * A * B: a product scaled on the way (an SGD update written
/// by the weight-gradient product itself: W += (-lr) xᵀ dy).
extern "C" void nnc_rt_sgemm_scaled(const nnc::runtime::GemmDesc *desc, const float *A, const float *B, float *C,
                                    float alpha);
/// Packs B (read with desc's rsB and csB; batch 1) into `out`, which holds
/// packedBFloats(desc->K, desc->N) floats, for products with desc->packedB.
extern "C" void nnc_rt_sgemm_pack_b(const nnc::runtime::GemmDesc *desc, const float *B, float *out);
