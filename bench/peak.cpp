// peak.cpp — measures this machine's FP32 fused-multiply-add peak in GFLOP/s,
// the ceiling against which nnc's and the peers' GEMM figures are read.
//
// Each thread runs a loop of independent vector FMAs, acc = acc * a + b, on
// 12 accumulators (AVX-512: 12 zmm of 16 floats; otherwise AVX2/FMA: 12 ymm of
// 8 floats). 12 independent chains cover FMA latency x throughput (4 cycles x
// 2 pipes on current cores), so the loop runs at the FMA units' rate; every
// FMA counts 2 FLOP per lane. The figure is the best of a few ~0.2 s runs,
// for 1 thread and for all threads (std::thread, one per schedulable CPU,
// started together; wall time to the last one's end).
//
// Build and run (bench scripts do this):
//   g++ -O2 -march=native -std=c++17 -pthread bench/peak.cpp -o peak && ./peak
// Output, one JSON object per line (figures of the 2-vCPU KVM machine this was
// written on, an Intel Xeon with two 512-bit FMA ports at ~2.3-2.5 GHz: its
// two vCPUs do not add up, so they seem to share one physical core):
//   {"peer":"peak","threads":1,"gflops":150.3,"isa":"avx512"}
//   {"peer":"peak","threads":2,"gflops":148.0,"isa":"avx512"}
#include <immintrin.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#if defined(__AVX512F__)
using vec = __m512;
static const char* const kIsa = "avx512";
static inline vec splat(float x) { return _mm512_set1_ps(x); }
static inline vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
static inline vec add(vec a, vec b) { return _mm512_add_ps(a, b); }
static inline void store(float* f, vec v) { _mm512_storeu_ps(f, v); }
#elif defined(__AVX2__) && defined(__FMA__)
using vec = __m256;
static const char* const kIsa = "avx2";
static inline vec splat(float x) { return _mm256_set1_ps(x); }
static inline vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
static inline vec add(vec a, vec b) { return _mm256_add_ps(a, b); }
static inline void store(float* f, vec v) { _mm256_storeu_ps(f, v); }
#else
#error "peak.cpp needs AVX-512F or AVX2+FMA (compile with -march=native on x86-64)"
#endif

constexpr int kAcc = 12;                                  // independent FMA chains
constexpr int kLanes = sizeof(vec) / sizeof(float);
constexpr double kFlopPerIter = 2.0 * kLanes * kAcc;      // FMA = multiply + add

static volatile float g_sink;  // keeps the results alive

// Runs `iters` rounds of kAcc independent FMAs. a slightly below 1 and a small
// b keep the accumulators bounded and normal (no overflow, no denormals).
static void fma_loop(long iters) {
  const vec a = splat(0.999999f), b = splat(1e-7f);
  vec c0 = splat(0.1f), c1 = splat(0.2f), c2 = splat(0.3f), c3 = splat(0.4f);
  vec c4 = splat(0.5f), c5 = splat(0.6f), c6 = splat(0.7f), c7 = splat(0.8f);
  vec c8 = splat(0.9f), c9 = splat(1.0f), c10 = splat(1.1f), c11 = splat(1.2f);
  for (long i = 0; i < iters; ++i) {
    c0 = fma(c0, a, b);   c1 = fma(c1, a, b);   c2 = fma(c2, a, b);
    c3 = fma(c3, a, b);   c4 = fma(c4, a, b);   c5 = fma(c5, a, b);
    c6 = fma(c6, a, b);   c7 = fma(c7, a, b);   c8 = fma(c8, a, b);
    c9 = fma(c9, a, b);   c10 = fma(c10, a, b); c11 = fma(c11, a, b);
  }
  vec s = add(add(add(c0, c1), add(c2, c3)), add(add(c4, c5), add(c6, c7)));
  s = add(s, add(add(c8, c9), add(c10, c11)));
  float lanes[kLanes];
  store(lanes, s);
  float sum = 0;
  for (float x : lanes) sum += x;
  g_sink = sum;
}

static double now() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

// GFLOP/s of `threads` threads each running fma_loop(iters), started together.
static double run(int threads, long iters) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {}
      fma_loop(iters);
    });
  while (ready.load() < threads) {}
  const double t0 = now();
  go.store(true, std::memory_order_release);
  for (auto& th : pool) th.join();
  const double dt = now() - t0;
  return threads * iters * kFlopPerIter / dt / 1e9;
}

int main() {
  cpu_set_t set;
  const int cpus = sched_getaffinity(0, sizeof set, &set) == 0
                       ? CPU_COUNT(&set)
                       : std::max(1u, std::thread::hardware_concurrency());

  // Calibrate: iterations for ~0.2 s on one thread (also warms the clocks up).
  long iters = 1 << 20;
  for (;;) {
    const double t0 = now();
    fma_loop(iters);
    const double dt = now() - t0;
    if (dt > 0.05) { iters = static_cast<long>(iters * 0.2 / dt); break; }
    iters *= 4;
  }

  std::vector<int> counts{1};
  if (cpus > 1) counts.push_back(cpus);
  for (int threads : counts) {
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) best = std::max(best, run(threads, iters));
    std::printf("{\"peer\":\"peak\",\"threads\":%d,\"gflops\":%.1f,\"isa\":\"%s\"}\n",
                threads, best, kIsa);
  }
  return 0;
}
