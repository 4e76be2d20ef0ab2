// Blocking, packing and threading around the GEMM micro-kernel; see Gemm.h.
//
// For each matrix of the stack, columns go in blocks of NC and depth in
// blocks of KC. When B's block is read by more than a few row tiles (or its
// rows are not contiguous), it is first copied into panels of NR columns,
// KC x NR each and contiguous, so the micro-kernel streams it from L2 while
// its MR rows of A, packed k-major, stay in L1 across the panels. Work is split over the thread pool by matrices of the
// stack, else by column panels, else by row tiles.
#include "runtime/Gemm.h"

#include "runtime/Tensor.h"
#include "runtime/ThreadPool.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

namespace nnc::runtime {

namespace {

constexpr int64_t kScalarMR = 4;

void scalarMicroKernel(int64_t K, const float *A, const float *B, int64_t rsB, float *C, int64_t ldc, int64_t m,
                       int64_t n, int64_t accumulate) {
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += A[k * kScalarMR + r] * B[k * rsB + j];
      C[r * ldc + j] = accumulate ? C[r * ldc + j] + s : s;
    }
}

struct Kernel : GemmKernels {
  std::string tile;
  Kernel() {
    mr = int(kScalarMR);
    nr = 16;
    for (int m = 1; m <= mr; ++m) {
      packed[m] = inPlace[m] = scalarMicroKernel;
      inPlaceCols[m] = nr;
    }
    tile = "4x16";
  }
};
Kernel kernel;

constexpr int64_t KC = 320; ///< most depth of a block: MR rows of A (15 KiB at MR 12) stay in L1
constexpr int64_t NC = 512; ///< columns of a block: KC x NC of B (512 KiB) stays in L2

/// A 64-byte aligned buffer per thread for packed panels: `which` 0 for B's
/// block, 1 for A's micro-panel.
float *packBuffer(int which, int64_t floats) {
  struct Free {
    void operator()(float *p) const { std::free(p); }
  };
  thread_local std::unique_ptr<float, Free> buf[2];
  thread_local int64_t capacity[2] = {0, 0};
  if (capacity[which] < floats) {
    buf[which].reset(
        static_cast<float *>(std::aligned_alloc(64, size_t((std::max<int64_t>(floats, 1) * 4 + 63) / 64 * 64))));
    if (!buf[which]) {
      std::fprintf(stderr, "nnc: error: out of memory packing a matrix product\n");
      std::abort();
    }
    capacity[which] = floats;
  }
  return buf[which].get();
}

/// Copies m rows of A (kc columns) into a panel, k-major: out[k * MR + r],
/// zero for rows m..MR-1, so the kernel reads them contiguously and rows far
/// apart in memory do not fight over the same L1 sets. The loops read along
/// whichever of A's strides is 1. The values are multiplied by alpha (the
/// scale of a scaled product) on the way.
void packA(const float *A, int64_t rsA, int64_t csA, int64_t m, int64_t kc, int64_t MR, float *out, float alpha) {
  if (m < MR)
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t r = m; r < MR; ++r)
        out[k * MR + r] = 0;
  if (csA == 1) {
    for (int64_t r = 0; r < m; ++r)
      for (int64_t k = 0; k < kc; ++k)
        out[k * MR + r] = A[r * rsA + k] * alpha;
  } else {
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t r = 0; r < m; ++r)
        out[k * MR + r] = A[r * rsA + k * csA] * alpha;
  }
}

/// Copies a kc x nc block of B into panels of NR columns, each kc x NR and
/// contiguous, zero past nc.
void packB(const float *B, int64_t rsB, int64_t csB, int64_t kc, int64_t nc, int64_t NR, float *out) {
  int64_t panels = (nc + NR - 1) / NR;
  for (int64_t p = 0; p < panels; ++p) {
    float *dst = out + p * kc * NR;
    int64_t cols = std::min(NR, nc - p * NR);
    const float *src = B + p * NR * csB;
    if (csB == 1) {
      for (int64_t k = 0; k < kc; ++k) {
        std::memcpy(dst + k * NR, src + k * rsB, size_t(cols) * sizeof(float));
        for (int64_t j = cols; j < NR; ++j)
          dst[k * NR + j] = 0;
      }
    } else {
      // Transposed B: each column is contiguous along k (rsB == 1 when B
      // is a transposed row-major matrix), so 4 x 4 tiles are loaded as
      // rows and stored transposed.
      int64_t j = 0;
#if defined(__SSE2__)
      if (rsB == 1)
        for (; j + 4 <= cols; j += 4) {
          int64_t k = 0;
          for (; k + 4 <= kc; k += 4) {
            __m128 r0 = _mm_loadu_ps(src + (j + 0) * csB + k), r1 = _mm_loadu_ps(src + (j + 1) * csB + k);
            __m128 r2 = _mm_loadu_ps(src + (j + 2) * csB + k), r3 = _mm_loadu_ps(src + (j + 3) * csB + k);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(dst + (k + 0) * NR + j, r0);
            _mm_storeu_ps(dst + (k + 1) * NR + j, r1);
            _mm_storeu_ps(dst + (k + 2) * NR + j, r2);
            _mm_storeu_ps(dst + (k + 3) * NR + j, r3);
          }
          for (; k < kc; ++k)
            for (int64_t jj = j; jj < j + 4; ++jj)
              dst[k * NR + jj] = src[jj * csB + k];
        }
#endif
      for (; j < cols; ++j)
        for (int64_t k = 0; k < kc; ++k)
          dst[k * NR + j] = src[j * csB + k * rsB];
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t jj = cols; jj < NR; ++jj)
          dst[k * NR + jj] = 0;
    }
  }
}

int64_t roundUp(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

/// The depth of the blocks K is cut into: as few as fit KC, of equal depth,
/// so no block is so thin that loading and storing C outweighs its FMAs
/// (K = 288 is one block, not 256 + 32).
int64_t kBlock(int64_t K) {
  int64_t blocks = std::max<int64_t>(1, (K + KC - 1) / KC);
  return std::max<int64_t>(1, (K + blocks - 1) / blocks);
}

/// Where B packed whole (nnc_rt_sgemm_pack_b) keeps each block: for the
/// block of columns starting at jb (a multiple of NC) and depth from pc,
/// jb * K + pc * (the block's columns rounded up to NR); panels of kc x NR
/// follow one another inside.
const float *packedBlock(const GemmDesc &d, const float *packed, int64_t jb, int64_t pc) {
  return packed + jb * d.K + pc * roundUp(std::min(NC, d.N - jb), kernel.nr);
}

/// Columns [j0, j1) and rows [i0, i1) of one matrix product.
void gemmBlock(const GemmDesc &d, const float *A, const float *B, float *C, int64_t i0, int64_t i1, int64_t j0,
               int64_t j1, bool accumulate, float alpha) {
  const int64_t MR = kernel.mr, NR = kernel.nr;
  int64_t rows = i1 - i0;
  // Packing pays when B's block is read by several row tiles, and is needed
  // when B's rows are not contiguous.
  bool pack = d.packedB || d.csB != 1 || rows > 2 * MR;
  // Blocks of columns start at multiples of NC (where B packed whole has
  // them); j0 is a multiple of NR.
  const int64_t kb = kBlock(d.K);
  for (int64_t jc = j0, jnext; jc < j1; jc = jnext) {
    int64_t jb = jc / NC * NC;
    jnext = std::min(j1, jb + NC);
    int64_t nc = jnext - jc;
    for (int64_t pc = 0; pc < d.K || pc == 0; pc += kb) {
      int64_t kc = std::min(kb, d.K - pc);
      bool acc = accumulate || pc > 0;
      const float *Bblock = B + pc * d.rsB + jc * d.csB;
      const float *packed = nullptr;
      int64_t panels = (nc + NR - 1) / NR;
      if (d.packedB) {
        packed = packedBlock(d, B, jb, pc) + (jc - jb) / NR * kc * NR;
      } else if (pack) {
        float *buf = packBuffer(0, panels * kc * NR);
        packB(Bblock, d.rsB, d.csB, kc, nc, NR, buf);
        packed = buf;
      }
      float *Apanel = packBuffer(1, kc * MR);
      for (int64_t ir = i0; ir < i1; ir += MR) {
        int64_t m = std::min(MR, i1 - ir);
        packA(A + ir * d.rsA + pc * d.csA, d.rsA, d.csA, m, kc, MR, Apanel, alpha);
        if (pack) {
          GemmMicroKernel fn = kernel.packed[m];
          for (int64_t p = 0; p < panels; ++p) {
            int64_t n = std::min(NR, nc - p * NR);
            fn(kc, Apanel, packed + p * kc * NR, NR, C + ir * d.ldc + jc + p * NR, d.ldc, m, n, acc);
          }
        } else {
          // B in place: panels as wide as this row count's kernel takes.
          GemmMicroKernel fn = kernel.inPlace[m];
          int64_t width = kernel.inPlaceCols[m];
          for (int64_t j = 0; j < nc; j += width)
            fn(kc, Apanel, Bblock + j, d.rsB, C + ir * d.ldc + jc + j, d.ldc, m, std::min(width, nc - j), acc);
        }
      }
      if (d.K == 0)
        break;
    }
  }
}

} // namespace

void setGemmKernels(const GemmKernels &k) {
  if (k.nr > kMaxGemmCols || k.mr > kMaxGemmRows)
    throw Error("GEMM kernels of " + std::to_string(k.mr) + "x" + std::to_string(k.nr) + " exceed the largest tile");
  static_cast<GemmKernels &>(kernel) = k;
  kernel.tile = std::to_string(k.mr) + "x" + std::to_string(k.nr);
}

const char *gemmTile() { return kernel.tile.c_str(); }

void sgemm(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C) {
  GemmDesc d{1, M, N, K, K, 1, 0, N, 1, 0, N, 0, 0, 0};
  nnc_rt_sgemm(&d, A, B, C);
}

int64_t packedBFloats(int64_t K, int64_t N) { return std::max<int64_t>(K, 1) * roundUp(N, kernel.nr); }

int64_t packedBFloatsBound(int64_t K, int64_t N) { return std::max<int64_t>(K, 1) * roundUp(N, kMaxGemmCols); }

} // namespace nnc::runtime

extern "C" void nnc_rt_sgemm(const nnc::runtime::GemmDesc *desc, const float *A, const float *B, float *C) {
  nnc_rt_sgemm_scaled(desc, A, B, C, 1.0f);
}

extern "C" void nnc_rt_sgemm_scaled(const nnc::runtime::GemmDesc *desc, const float *A, const float *B, float *C,
                                    float alpha) {
  using namespace nnc::runtime;
  GemmDesc d = *desc;
  // A stack of row-major A's times one shared B, into a stack of C's, is one
  // product with the stack's rows one after another.
  if (d.batch > 1 && d.bsB == 0 && d.csA == 1 && d.bsA == d.M * d.rsA && d.bsC != 0 && d.bsC == d.M * d.ldc) {
    d.M *= d.batch;
    d.batch = 1;
  }
  // A summed stack whose A's and B's continue one another along k (the
  // weight gradient of a layer applied at every position: sum_t X_tᵀ G_t)
  // is one product with a longer k.
  if (d.batch > 1 && d.bsC == 0 && d.bsA == d.K * d.csA && d.bsB == d.K * d.rsB) {
    d.K *= d.batch;
    d.batch = 1;
  }
  if (d.M <= 0 || d.N <= 0)
    return;
  const int64_t MR = kernel.mr, NR = kernel.nr;
  // A product with few columns fills a small part of each NR-wide panel of
  // the micro-kernel; its transpose, Cᵀ = Bᵀ Aᵀ, has few rows instead, which
  // waste much less of an MR-row tile (the weight gradient of a convolution
  // over one channel: 9 columns). It is computed into a buffer and added back
  // transposed.
  auto tiles = [&](int64_t rows, int64_t cols) { return roundUp(rows, MR) * roundUp(cols, NR); };
  if (d.N < NR && !d.packedB && 2 * tiles(d.N, d.M) < tiles(d.M, d.N)) {
    bool summed = d.bsC == 0 && d.batch > 1;
    int64_t mats = summed ? 1 : d.batch;
    GemmDesc t = d;
    t.M = d.N, t.N = d.M;
    t.rsA = d.csB, t.csA = d.rsB, t.bsA = d.bsB;
    t.rsB = d.csA, t.csB = d.rsA, t.bsB = d.bsA;
    t.ldc = d.M, t.bsC = summed ? 0 : d.M * d.N, t.accumulate = 0;
    std::vector<float> ct(size_t(mats * d.M * d.N));
    nnc_rt_sgemm_scaled(&t, B, A, ct.data(), alpha);
    for (int64_t b = 0; b < mats; ++b)
      for (int64_t i = 0; i < d.M; ++i)
        for (int64_t j = 0; j < d.N; ++j) {
          float &c = C[b * d.bsC + i * d.ldc + j];
          float v = ct[size_t(b * d.M * d.N + j * d.M + i)];
          c = d.accumulate ? c + v : v;
        }
    return;
  }
  int64_t flops = 2 * d.batch * d.M * d.N * std::max<int64_t>(d.K, 1);
  ThreadPool &pool = globalThreadPool();
  int threads = flops < (1 << 18) ? 1 : pool.threads();
  int64_t colPanels = (d.N + NR - 1) / NR, rowTiles = (d.M + MR - 1) / MR;
  // bsC == 0: the products of the stack are summed into one C, so the
  // matrices run one after another and each is split over the threads.
  bool sumStack = d.bsC == 0 && d.batch > 1;
  auto matrix = [&](int64_t b, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    bool acc = d.accumulate || (sumStack && b > 0);
    gemmBlock(d, A + b * d.bsA, B + b * d.bsB, C + b * d.bsC, i0, i1, j0, j1, acc, alpha);
  };
  try {
    if (threads == 1) {
      for (int64_t b = 0; b < d.batch; ++b)
        matrix(b, 0, d.M, 0, d.N);
    } else if (d.batch >= threads && !sumStack) {
      pool.parallelFor(d.batch, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b)
          matrix(b, 0, d.M, 0, d.N);
      });
    } else if (sumStack && d.batch >= 2 * threads) {
      // Each thread sums its share of the stack: the first share straight
      // into C, the others into buffers of their own, added to C at the end.
      int64_t shares = threads, cElems = d.M * d.ldc;
      std::vector<float> partial(size_t((shares - 1) * cElems));
      pool.parallelFor(shares, 1, [&](int64_t s0, int64_t s1) {
        for (int64_t sh = s0; sh < s1; ++sh) {
          int64_t b0 = d.batch * sh / shares, b1 = d.batch * (sh + 1) / shares;
          float *out = sh == 0 ? C : partial.data() + (sh - 1) * cElems;
          for (int64_t b = b0; b < b1; ++b)
            gemmBlock(d, A + b * d.bsA, B + b * d.bsB, out, 0, d.M, 0, d.N, b > b0 || (sh == 0 && d.accumulate), alpha);
        }
      });
      for (int64_t sh = 1; sh < shares; ++sh)
        for (int64_t i = 0; i < d.M; ++i)
          for (int64_t j = 0; j < d.N; ++j)
            C[i * d.ldc + j] += partial[size_t((sh - 1) * cElems + i * d.ldc + j)];
    } else if (colPanels >= 2 * threads || colPanels >= rowTiles) {
      // Each thread takes whole panels of columns: B is split, not copied twice.
      for (int64_t b = 0; b < d.batch; ++b)
        pool.parallelFor(colPanels, 1,
                         [&](int64_t p0, int64_t p1) { matrix(b, 0, d.M, p0 * NR, std::min(d.N, p1 * NR)); });
    } else {
      for (int64_t b = 0; b < d.batch; ++b)
        pool.parallelFor(rowTiles, 1,
                         [&](int64_t t0, int64_t t1) { matrix(b, t0 * MR, std::min(d.M, t1 * MR), 0, d.N); });
    }
  } catch (const std::exception &e) {
    std::fprintf(stderr, "nnc: error: matrix product failed: %s\n", e.what());
    std::abort();
  }
}

extern "C" void nnc_rt_sgemm_pack_b(const nnc::runtime::GemmDesc *desc, const float *B, float *out) {
  using namespace nnc::runtime;
  const GemmDesc &d = *desc;
  for (int64_t jb = 0; jb < d.N; jb += NC)
    for (int64_t pc = 0, kb = kBlock(d.K); pc < d.K; pc += kb)
      packB(B + pc * d.rsB + jb * d.csB, d.rsB, d.csB, std::min(kb, d.K - pc), std::min(NC, d.N - jb), kernel.nr,
            const_cast<float *>(packedBlock(d, out, jb, pc)));
}
