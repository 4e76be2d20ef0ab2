// nnc-gemm-bench: GFLOP/s of nnc's GEMM (the runtime's blocking around the
// JIT-emitted micro-kernel, exactly what compiled matmuls call) on square
// n x n float32 matrices. Prints one JSON object per size:
//   {"peer":"nnc","workload":"gemm","n":N,"threads":T,"ms":...,"gflops":...}
// Usage: nnc-gemm-bench [--threads T] [--seconds S] [n | MxNxK ...]
// (default n: 64 ... 2048; MxNxK times an M x K by K x N product)
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
  struct Size {
    int64_t m, n, k;
  };
  std::vector<Size> sizes;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc)
      seconds = std::atof(argv[++i]);
    else if (long long m = 0, n = 0, k = 0;
             std::sscanf(argv[i], "%llux%llux%llu", &m, &n, &k) == 3 && m > 0 && n > 0 && k > 0)
      sizes.push_back({m, n, k});
    else if (std::atoll(argv[i]) > 0)
      sizes.push_back({std::atoll(argv[i]), std::atoll(argv[i]), std::atoll(argv[i])});
    else {
      std::fprintf(stderr, "usage: nnc-gemm-bench [--threads T] [--seconds S] [n | MxNxK ...]\n");
      return 2;
    }
  }
  if (sizes.empty())
    for (int64_t n : {64, 128, 256, 512, 1024, 2048})
      sizes.push_back({n, n, n});
  nnc::runtime::setGlobalThreads(threads);
  nnc::codegen::JIT jit; // compiles and installs the micro-kernel
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  using Clock = std::chrono::steady_clock;
  for (auto [m, n, k] : sizes) {
    std::vector<float> a(size_t(m * k)), b(size_t(k * n)), c(size_t(m * n));
    for (float &x : a)
      x = u(rng);
    for (float &x : b)
      x = u(rng);
    nnc::runtime::sgemm(m, n, k, a.data(), b.data(), c.data()); // warm-up
    std::vector<double> times;
    Clock::time_point start = Clock::now();
    while (times.size() < 3 ||
           (std::chrono::duration<double>(Clock::now() - start).count() < seconds && times.size() < 100000)) {
      Clock::time_point t0 = Clock::now();
      nnc::runtime::sgemm(m, n, k, a.data(), b.data(), c.data());
      times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    std::sort(times.begin(), times.end());
    double median = times[times.size() / 2];
    std::string shape = m == n && n == k ? "" : ",\"m\":" + std::to_string(m) + ",\"k\":" + std::to_string(k);
    std::printf("{\"peer\":\"nnc\",\"workload\":\"gemm\",\"n\":%lld%s,\"threads\":%d,\"ms\":%.6f,\"gflops\":%.2f,"
                "\"steps\":%zu,\"tile\":\"%s\"}\n",
                (long long)n, shape.c_str(), nnc::runtime::globalThreadPool().threads(), median * 1e3,
                2.0 * double(m) * double(n) * double(k) / median * 1e-9, times.size(), nnc::runtime::gemmTile());
    std::fflush(stdout);
  }
  return 0;
}
