// Thread pool implementation. Each parallelFor publishes a heap-allocated Job
// that workers claim chunks from with an atomic counter; a worker that wakes
// late holds its own reference to the old job and finds it exhausted, so jobs
// never have to wait for every worker to go back to sleep.
#include "runtime/ThreadPool.h"

#include "runtime/Tensor.h"

#include <xmmintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>

namespace nnc::runtime {

namespace {

/// True while this thread runs a parallel body (as worker or as caller);
/// parallelFor then runs inline.
thread_local bool tlsInParallel = false;

struct InParallelScope {
  bool saved = tlsInParallel;
  InParallelScope() { tlsInParallel = true; }
  ~InParallelScope() { tlsInParallel = saved; }
};

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Spinning before blocking keeps back-to-back small loops (the kernels of a
// training step, the steps of a loop) from paying a futex wake-up every time,
// which on a VM can take longer than the loop. Bounded by time, not by
// iterations: `pause` costs from about 10 to 140 cycles across CPUs.
constexpr std::chrono::microseconds kSpin(250);

/// Spins until done() or kSpin has passed; returns done().
template <class Done> bool spinUntil(const Done &done) {
  auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 1;; ++i) {
    if (done())
      return true;
    cpuRelax();
    if (i % 16 == 0 && std::chrono::steady_clock::now() > deadline)
      return done();
  }
}

} // namespace

struct ThreadPool::Job {
  const std::function<void(int64_t, int64_t)> *body = nullptr;
  int64_t n = 0;
  int64_t chunks = 0;
  std::atomic<int64_t> nextChunk{0};
  std::atomic<int64_t> doneChunks{0};
  std::mutex errorMutex;
  std::exception_ptr error;
  ThreadPool *pool = nullptr;
};

ThreadPool::ThreadPool(int threads) : threads_(threads) {
  if (threads < 1)
    throw Error("thread count must be at least 1, got " + std::to_string(threads));
  workers_.reserve(size_t(threads - 1));
  for (int i = 1; i < threads; ++i)
    workers_.emplace_back([this] { workerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  workReady_.notify_all();
  for (std::thread &t : workers_)
    t.join();
}

void ThreadPool::runChunks(Job &job) {
  InParallelScope scope;
  while (true) {
    int64_t i = job.nextChunk.fetch_add(1, std::memory_order_relaxed);
    if (i >= job.chunks)
      return;
    // Chunk sizes differ by at most one: the first n % chunks get one extra.
    int64_t base = job.n / job.chunks, extra = job.n % job.chunks;
    int64_t begin = i * base + std::min(i, extra);
    int64_t end = begin + base + (i < extra ? 1 : 0);
    try {
      (*job.body)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(job.errorMutex);
      if (!job.error)
        job.error = std::current_exception();
    }
    if (job.doneChunks.fetch_add(1, std::memory_order_acq_rel) + 1 == job.chunks) {
      // Taking the pool mutex orders this notify after the caller's predicate
      // check, so the wake-up cannot be lost.
      { std::lock_guard<std::mutex> lock(job.pool->mutex_); }
      job.pool->jobDone_.notify_all();
    }
  }
}

void ThreadPool::workerLoop() {
  // Compiled code assumes flush-to-zero and denormals-are-zero (see
  // runtime::enableFlushToZero); a worker has them whatever the thread
  // that made the pool had (nnc --threads makes it before training sets them).
  _mm_setcsr(_mm_getcsr() | 0x8040);
  uint64_t seen = 0;
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (generation_ == seen && !stop_) {
        lock.unlock();
        // Only a hint: the decision is re-made under the lock.
        spinUntil([&] { return generation_.load(std::memory_order_relaxed) != seen; });
        lock.lock();
        workReady_.wait(lock, [&] { return generation_ != seen || stop_; });
      }
      if (stop_)
        return;
      seen = generation_;
      job = job_;
    }
    if (job)
      runChunks(*job);
  }
}

void ThreadPool::parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)> &body) {
  if (n <= 0)
    return;
  grain = std::max<int64_t>(grain, 1);
  int64_t chunks = std::min<int64_t>(threads_, n / grain);
  if (chunks <= 1 || tlsInParallel) {
    InParallelScope scope;
    body(0, n);
    return;
  }

  std::lock_guard<std::mutex> submit(submitMutex_);
  auto job = std::make_shared<Job>();
  job->body = &body;
  job->n = n;
  job->chunks = chunks;
  job->pool = this;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = job;
    generation_.fetch_add(1, std::memory_order_relaxed);
  }
  workReady_.notify_all();

  runChunks(*job);

  spinUntil([&] { return job->doneChunks.load(std::memory_order_acquire) == chunks; });
  {
    std::unique_lock<std::mutex> lock(mutex_);
    jobDone_.wait(lock, [&] { return job->doneChunks.load(std::memory_order_acquire) == chunks; });
    // Drop the pool's reference so the body's captures are not kept alive.
    job_.reset();
  }
  if (job->error)
    std::rethrow_exception(job->error);
}

namespace {

std::mutex globalMutex;
std::unique_ptr<ThreadPool> globalPool;

int resolveThreads(int n) {
  if (n < 0)
    throw Error("thread count must be 0 (one per hardware thread) or positive, got " + std::to_string(n));
  if (n == 0)
    n = int(std::max(1u, std::thread::hardware_concurrency()));
  return n;
}

} // namespace

ThreadPool &globalThreadPool() {
  std::lock_guard<std::mutex> lock(globalMutex);
  if (!globalPool)
    globalPool = std::make_unique<ThreadPool>(resolveThreads(0));
  return *globalPool;
}

void setGlobalThreads(int n) {
  int threads = resolveThreads(n);
  std::lock_guard<std::mutex> lock(globalMutex);
  if (globalPool && globalPool->threads() == threads)
    return;
  globalPool.reset();
  globalPool = std::make_unique<ThreadPool>(threads);
}

} // namespace nnc::runtime

extern "C" void nnc_rt_parallel_for(void (*body)(void *ctx, int64_t begin, int64_t end), void *ctx, int64_t n,
                                    int64_t grain) {
  try {
    nnc::runtime::globalThreadPool().parallelFor(n, grain,
                                                 [body, ctx](int64_t begin, int64_t end) { body(ctx, begin, end); });
  } catch (const std::exception &e) {
    std::fprintf(stderr, "nnc: error: parallel loop failed: %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "nnc: error: parallel loop failed\n");
    std::abort();
  }
}
