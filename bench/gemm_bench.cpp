// nnc-gemm-bench: GFLOP/s of nnc's GEMM (the runtime's blocking around the
// JIT-emitted micro-kernel, exactly what compiled matmuls call) on square
// n x n float32 matrices. Prints one JSON object per size:
//   {"peer":"nnc","workload":"gemm","n":N,"threads":T,"ms":...,"gflops":...}
// Usage: nnc-gemm-bench [--threads T] [--seconds S] [n ...]   (default n: 64 ... 2048)
#include "codegen/JIT.h"
#include "runtime/Gemm.h"
#include "runtime/ThreadPool.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

int main(int argc, char **argv) {
  int threads = 0;
  double seconds = 1.0;
  std::vector<int64_t> sizes;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = std::atof(argv[++i]);
    else if (std::atoll(argv[i]) > 0)
      sizes.push_back(std::atoll(argv[i]));
    else {
      std::fprintf(stderr, "usage: nnc-gemm-bench [--threads T] [--seconds S] [n ...]\n");
      return 2;
    }
  }
  if (sizes.empty())
    sizes = {64, 128, 256, 512, 1024, 2048};
  nnc::runtime::setGlobalThreads(threads);
  nnc::codegen::JIT jit; // compiles and installs the micro-kernel
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  using Clock = std::chrono::steady_clock;
  for (int64_t n : sizes) {
    std::vector<float> a(size_t(n * n)), b(size_t(n * n)), c(size_t(n * n));
    for (float &x : a)
      x = u(rng);
    for (float &x : b)
      x = u(rng);
    nnc::runtime::sgemm(n, n, n, a.data(), b.data(), c.data()); // warm-up
    std::vector<double> times;
    Clock::time_point start = Clock::now();
    while (times.size() < 3 ||
           (std::chrono::duration<double>(Clock::now() - start).count() < seconds && times.size() < 100000)) {
      Clock::time_point t0 = Clock::now();
      nnc::runtime::sgemm(n, n, n, a.data(), b.data(), c.data());
      times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::sort(times.begin(), times.end());
    double median = times[times.size() / 2];
    std::printf("{\"peer\":\"nnc\",\"workload\":\"gemm\",\"n\":%lld,\"threads\":%d,\"ms\":%.6f,\"gflops\":%.2f,"
                "\"steps\":%zu,\"tile\":\"%s\"}\n",
                (long long)n, nnc::runtime::globalThreadPool().threads(), median * 1e3,
                2.0 * double(n) * double(n) * double(n) / median * 1e-9, times.size(), nnc::runtime::gemmTile());
    std::fflush(stdout);
  }
  return 0;
}
