// A fixed-size thread pool for data-parallel loops, shared by the trainer and
// by JIT-compiled kernels (through nnc_rt_parallel_for). The calling thread
// always takes part in the work, so a pool of N threads starts N-1 workers.
// Calls made from inside a parallel body run inline on the current thread:
// no oversubscription and no deadlock from nesting.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace nnc::runtime {

class ThreadPool {
public:
  /// A pool that runs loops on `threads` threads (the caller plus
  /// threads-1 workers). `threads` must be at least 1.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int threads() const { return threads_; }

  /// Calls body(begin, end) over contiguous chunks covering [0, n) exactly
  /// once, using at most threads() chunks of at least `grain` iterations each,
  /// and returns when all have finished. Runs inline when n <= grain, when the
  /// pool has one thread, or when called from inside another parallel body.
  /// If a chunk throws, the first exception is rethrown after all chunks end.
  void parallelFor(int64_t n, int64_t grain,
                   const std::function<void(int64_t begin, int64_t end)> &body);

private:
  struct Job;
  void workerLoop();
  static void runChunks(Job &job);

  int threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable workReady_;
  std::condition_variable jobDone_;
  std::shared_ptr<Job> job_;
  // Bumped (under mutex_) for each new job; read without the lock while spinning.
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
  // Serializes parallelFor calls from different outside threads.
  std::mutex submitMutex_;
};

/// The process-wide pool, created on first use with
/// std::thread::hardware_concurrency() threads unless setGlobalThreads was
/// called before.
ThreadPool &globalThreadPool();

/// Replaces the process-wide pool with one of `n` threads (0 = one per
/// hardware thread). Must not run concurrently with uses of the old pool.
void setGlobalThreads(int n);

} // namespace nnc::runtime

/// Entry point for JIT-compiled code: globalThreadPool().parallelFor over
/// [0, n) calling body(ctx, begin, end). Never throws: a failure to run the
/// loop is reported on stderr and aborts.
extern "C" void nnc_rt_parallel_for(void (*body)(void *ctx, int64_t begin, int64_t end), void *ctx,
                                    int64_t n, int64_t grain);
