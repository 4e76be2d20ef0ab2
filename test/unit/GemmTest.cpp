// The runtime's GEMM with the JIT-emitted micro-kernel against a plain
// triple loop in double precision: edge tiles in every direction, transposed
// operands through strides, stacks, accumulation, and the split over threads.
#include "runtime/Gemm.h"
#include "codegen/JIT.h"
#include "runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

using namespace nnc;

namespace {

struct Case {
  int64_t batch, M, N, K;
  bool ta, tb, accumulate;
  bool packB = false; ///< B packed once beforehand (GemmDesc::packedB; batch 1)
};

void checkCase(const Case &c) {
  std::mt19937 rng(unsigned(c.M * 131 + c.N * 17 + c.K + c.batch));
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> A(size_t(c.batch * c.M * c.K)), B(size_t(c.batch * c.K * c.N)), C(size_t(c.batch * c.M * c.N));
  for (auto *v : {&A, &B, &C})
    for (float &x : *v)
      x = u(rng);
  std::vector<float> C0 = C;
  // A stored [M, K] or, transposed, [K, M]; B [K, N] or [N, K].
  runtime::GemmDesc d{c.batch,
                      c.M,
                      c.N,
                      c.K,
                      c.ta ? 1 : c.K,
                      c.ta ? c.M : 1,
                      c.M * c.K,
                      c.tb ? 1 : c.N,
                      c.tb ? c.K : 1,
                      c.K * c.N,
                      c.N,
                      c.M * c.N,
                      c.accumulate ? 1 : 0,
                      0};
  if (c.packB) {
    runtime::GemmDesc p = d;
    p.packedB = 1;
    p.bsB = 0;
    // Guard floats after the packed copy: packing must stay inside its size.
    std::vector<float> packed(size_t(runtime::packedBFloats(c.K, c.N)) + 16, 777.0f);
    nnc_rt_sgemm_pack_b(&p, B.data(), packed.data());
    for (size_t i = packed.size() - 16; i < packed.size(); ++i)
      ASSERT_EQ(packed[i], 777.0f) << "packing wrote past its size";
    nnc_rt_sgemm(&p, A.data(), packed.data(), C.data());
  } else {
    nnc_rt_sgemm(&d, A.data(), B.data(), C.data());
  }
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        double want = c.accumulate ? C0[size_t(b * c.M * c.N + i * c.N + j)] : 0.0, mag = std::fabs(want);
        for (int64_t k = 0; k < c.K; ++k) {
          double p =
              double(A[size_t(b * d.bsA + i * d.rsA + k * d.csA)]) * B[size_t(b * d.bsB + k * d.rsB + j * d.csB)];
          want += p;
          mag += std::fabs(p);
        }
        float got = C[size_t(b * c.M * c.N + i * c.N + j)];
        ASSERT_NEAR(got, want, 1e-5 * (mag + 1))
            << "batch " << c.batch << " M " << c.M << " N " << c.N << " K " << c.K << " ta " << c.ta << " tb " << c.tb
            << " acc " << c.accumulate << " at [" << b << "," << i << "," << j << "]";
      }
}

class Gemm : public ::testing::Test {
protected:
  static void SetUpTestSuite() { jit = new codegen::JIT(); } // installs the micro-kernel
  static void TearDownTestSuite() {
    delete jit;
    runtime::setGlobalThreads(0);
  }
  static codegen::JIT *jit;
};
codegen::JIT *Gemm::jit = nullptr;

TEST_F(Gemm, MatchesReferenceOnEdgeTiles) {
  runtime::setGlobalThreads(1);
  // Sizes around the tiles (12 x 32 or 6 x 16) and the K block (256).
  for (int64_t M : {1, 5, 12, 13, 30})
    for (int64_t N : {1, 15, 32, 33, 70})
      for (int64_t K : {1, 7, 255, 257})
        checkCase({1, M, N, K, false, false, false});
}

TEST_F(Gemm, TransposedOperandsStacksAndAccumulation) {
  runtime::setGlobalThreads(1);
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (bool acc : {false, true}) {
        checkCase({3, 17, 40, 9, ta, tb, acc});
        checkCase({1, 64, 130, 300, ta, tb, acc}); // packed B (many row tiles)
      }
}

TEST_F(Gemm, ReadsABPackedBeforehand) {
  // A loop's weight is packed once before the loop (MemoryPlan::packedB):
  // column blocks beyond NC (512) and depth beyond KC (256), transposed or
  // not, split over threads by column panels and by row tiles.
  for (int threads : {1, 2}) {
    runtime::setGlobalThreads(threads);
    for (bool tb : {false, true})
      for (bool acc : {false, true}) {
        checkCase({1, 64, 600, 300, false, tb, acc, true});
        checkCase({1, 5, 33, 7, true, tb, acc, true});
        checkCase({1, 300, 40, 20, false, tb, acc, true});
        checkCase({1, 3, 1100, 1, false, tb, acc, true});
      }
  }
}

/// C (+)= sum_b A[b] B[b] (bsC = 0), A row-major [M, K], B [K, N] or, with
/// tb, [N, K]; C starts at `c0` and is overwritten unless `accumulate`.
void checkSummedStack(int64_t batch, int64_t M, int64_t N, int64_t K, bool tb, bool accumulate, float c0,
                      unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> A(size_t(batch * M * K)), B(size_t(batch * K * N)), C(size_t(M * N), c0);
  for (auto *v : {&A, &B})
    for (float &x : *v)
      x = u(rng);
  runtime::GemmDesc d{batch, M, N, K, K, 1, M * K, tb ? 1 : N, tb ? K : 1, K * N, N, 0, accumulate ? 1 : 0, 0};
  nnc_rt_sgemm(&d, A.data(), B.data(), C.data());
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double want = accumulate ? c0 : 0.0;
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t k = 0; k < K; ++k)
          want += double(A[size_t(b * M * K + i * K + k)]) * B[size_t(b * K * N + k * d.rsB + j * d.csB)];
      ASSERT_NEAR(C[size_t(i * N + j)], want, 1e-4)
          << "batch " << batch << " M " << M << " N " << N << " at " << i << "," << j;
    }
}

TEST_F(Gemm, SumsTheStackWhenCHasNoStackStride) {
  // bsC = 0: C = sum_b A[b] B[b] (the convolution weight gradient over images).
  for (int threads : {1, 2}) {
    runtime::setGlobalThreads(threads);
    checkSummedStack(5, 13, 40, 30, false, false, 123.0f, 7);
  }
}

TEST_F(Gemm, SummedStacksThatContinueAlongKAreOneProduct) {
  // sum_t X_tᵀ G_t for X [T, S, K] and G [T, S, U]: the same as one product
  // with k running over T * S.
  const int64_t T = 6, S = 5, K = 20, U = 33;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> X(size_t(T * S * K)), G(size_t(T * S * U)), C(size_t(K * U));
  for (auto *v : {&X, &G})
    for (float &x : *v)
      x = u(rng);
  runtime::setGlobalThreads(2);
  runtime::GemmDesc d{T, K, U, S, 1, K, S * K, U, 1, S * U, U, 0, 0, 0};
  nnc_rt_sgemm(&d, X.data(), G.data(), C.data());
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < U; ++j) {
      double want = 0;
      for (int64_t r = 0; r < T * S; ++r)
        want += double(X[size_t(r * K + i)]) * G[size_t(r * U + j)];
      ASSERT_NEAR(C[size_t(i * U + j)], want, 1e-4) << i << "," << j;
    }
}

TEST_F(Gemm, NarrowProductsAreComputedTransposed) {
  // Fewer columns than a panel: computed as Cᵀ = Bᵀ Aᵀ and added back, for
  // stacks, every transposition and accumulation.
  for (int threads : {1, 2}) {
    runtime::setGlobalThreads(threads);
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (bool acc : {false, true})
          checkCase({3, 64, 5, 17, ta, tb, acc});
  }
  // A summed stack, as a convolution's weight gradient over one channel:
  // dW [32, 9] += sum_n dy[n] [32, 196] col[n]ᵀ (col[n] [9, 196]).
  runtime::setGlobalThreads(2);
  checkSummedStack(4, 32, 9, 196, true, true, 0.5f, 5);
}

TEST_F(Gemm, SplitsOverThreadsWithTheSameResult) {
  runtime::setGlobalThreads(2);
  checkCase({1, 200, 600, 100, false, false, false}); // by column panels
  checkCase({1, 700, 20, 100, true, false, false});   // by row tiles
  checkCase({4, 40, 40, 100, false, true, true});     // by matrices of the stack
  EXPECT_STRNE(runtime::gemmTile(), "4x16");          // the JIT's kernel, not the fallback
}

} // namespace
