// Tests for the thread pool: exact coverage of the index space for many
// (n, grain, threads) combinations, chunking limits, nesting, exceptions,
// concurrent callers, the global pool and the C entry point.
#include "runtime/ThreadPool.h"

#include "runtime/Tensor.h"

#include <gtest/gtest.h>
#include <xmmintrin.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

using namespace nnc::runtime;

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 4, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.threads(), threads);
    for (int64_t n : {0, 1, 2, 3, 7, 8, 9, 100, 1000, 12345}) {
      for (int64_t grain : {-1, 0, 1, 2, 3, 10, 64, 1000, 100000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::mutex mu;
        std::vector<std::pair<int64_t, int64_t>> chunks;
        pool.parallelFor(n, grain, [&](int64_t begin, int64_t end) {
          {
            std::lock_guard<std::mutex> lock(mu);
            chunks.emplace_back(begin, end);
          }
          for (int64_t i = begin; i < end; ++i)
            hits[size_t(i)].fetch_add(1);
        });
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[size_t(i)].load(), 1)
              << "index " << i << " n=" << n << " grain=" << grain << " threads=" << threads;
        if (n == 0) {
          EXPECT_TRUE(chunks.empty());
          continue;
        }
        // Contiguous, non-empty chunks, at most one per thread, each at least
        // `grain` long unless the loop ran as a single chunk.
        std::sort(chunks.begin(), chunks.end());
        EXPECT_LE(chunks.size(), size_t(threads));
        EXPECT_EQ(chunks.front().first, 0);
        EXPECT_EQ(chunks.back().second, n);
        for (size_t c = 0; c < chunks.size(); ++c) {
          EXPECT_LT(chunks[c].first, chunks[c].second);
          if (c) {
            EXPECT_EQ(chunks[c].first, chunks[c - 1].second);
          }
          if (chunks.size() > 1) {
            EXPECT_GE(chunks[c].second - chunks[c].first, std::max<int64_t>(grain, 1));
          }
        }
        if (n <= std::max<int64_t>(grain, 1) || threads == 1) {
          EXPECT_EQ(chunks.size(), 1u);
        } else if (n / std::max<int64_t>(grain, 1) >= threads) {
          EXPECT_EQ(chunks.size(), size_t(threads));
        }
      }
    }
  }
}

TEST(ThreadPool, UsesSeveralThreads) {
  ThreadPool pool(4);
  std::mutex mu;
  std::set<std::thread::id> ids;
  // Chunks that wait for each other can only finish if they run concurrently.
  std::atomic<int> arrived{0};
  pool.parallelFor(4, 1, [&](int64_t, int64_t) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
    }
    arrived.fetch_add(1);
    while (arrived.load() < 4)
      std::this_thread::yield();
  });
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids.count(std::this_thread::get_id()), 1u);
}

TEST(ThreadPool, WorkersFlushDenormalsToZeroWhateverTheirCreator) {
  // A pool made by a thread without flush-to-zero (nnc --threads makes the
  // global pool before training sets it) still runs its workers with it, as
  // the compiled code they run assumes.
  unsigned saved = _mm_getcsr();
  _mm_setcsr(saved & ~0x8040u);
  std::mutex mu;
  std::vector<std::pair<std::thread::id, bool>> chunks;
  std::atomic<int> arrived{0};
  {
    ThreadPool pool(4);
    pool.parallelFor(4, 1, [&](int64_t, int64_t) {
      // Chunks that wait for each other run on four threads.
      arrived.fetch_add(1);
      while (arrived.load() < 4)
        std::this_thread::yield();
      std::lock_guard<std::mutex> lock(mu);
      chunks.push_back({std::this_thread::get_id(), (_mm_getcsr() & 0x8040u) == 0x8040u});
    });
  }
  _mm_setcsr(saved);
  int workers = 0;
  for (auto &[id, flushing] : chunks)
    if (id != std::this_thread::get_id()) {
      ++workers;
      EXPECT_TRUE(flushing);
    }
  EXPECT_EQ(workers, 3);
}

TEST(ThreadPool, InlineWhenSmall) {
  ThreadPool pool(4);
  std::thread::id caller = std::this_thread::get_id();
  int calls = 0;
  pool.parallelFor(10, 10, [&](int64_t b, int64_t e) {
    ++calls;
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 10);
  });
  EXPECT_EQ(calls, 1);
}

TEST(ThreadPool, NestedCallsRunInline) {
  ThreadPool pool(4);
  const int64_t outer = 16, inner = 1000;
  std::vector<std::atomic<int>> hits(static_cast<size_t>(outer * inner));
  std::atomic<bool> nestedLeftThread{false};
  pool.parallelFor(outer, 1, [&](int64_t ob, int64_t oe) {
    std::thread::id me = std::this_thread::get_id();
    for (int64_t o = ob; o < oe; ++o)
      pool.parallelFor(inner, 1, [&](int64_t ib, int64_t ie) {
        if (std::this_thread::get_id() != me)
          nestedLeftThread = true;
        for (int64_t i = ib; i < ie; ++i)
          hits[size_t(o * inner + i)].fetch_add(1);
      });
  });
  EXPECT_FALSE(nestedLeftThread.load());
  for (auto &h : hits)
    ASSERT_EQ(h.load(), 1);
}

TEST(ThreadPool, NestedAcrossPools) {
  ThreadPool a(3), b(3);
  std::atomic<int64_t> sum{0};
  a.parallelFor(30, 1, [&](int64_t ob, int64_t oe) {
    b.parallelFor(100, 1, [&](int64_t ib, int64_t ie) { sum += (oe - ob) * (ie - ib); });
  });
  EXPECT_EQ(sum.load(), 30 * 100);
}

TEST(ThreadPool, ExceptionPropagatesAndPoolSurvives) {
  ThreadPool pool(4);
  EXPECT_THROW(pool.parallelFor(100, 1,
                                [&](int64_t b, int64_t e) {
                                  if (b <= 50 && 50 < e)
                                    throw std::runtime_error("boom");
                                }),
               std::runtime_error);
  std::atomic<int64_t> total{0};
  pool.parallelFor(1000, 1, [&](int64_t b, int64_t e) { total += e - b; });
  EXPECT_EQ(total.load(), 1000);
}

TEST(ThreadPool, ManySmallJobs) {
  ThreadPool pool(3);
  std::vector<int64_t> data(64);
  for (int iter = 0; iter < 20000; ++iter) {
    pool.parallelFor(64, 8, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        data[size_t(i)] += i;
    });
  }
  for (int64_t i = 0; i < 64; ++i)
    ASSERT_EQ(data[size_t(i)], 20000 * i);
}

TEST(ThreadPool, ConcurrentCallers) {
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  auto caller = [&] {
    for (int iter = 0; iter < 500; ++iter)
      pool.parallelFor(100, 1, [&](int64_t b, int64_t e) { total += e - b; });
  };
  std::thread t1(caller), t2(caller);
  caller();
  t1.join();
  t2.join();
  EXPECT_EQ(total.load(), 3 * 500 * 100);
}

TEST(ThreadPool, RejectsBadThreadCounts) {
  EXPECT_THROW(ThreadPool(0), Error);
  EXPECT_THROW(setGlobalThreads(-1), Error);
}

namespace {

struct SumContext {
  std::atomic<int64_t> sum{0};
  std::atomic<int> calls{0};
};

void sumRange(void *ctx, int64_t begin, int64_t end) {
  auto *c = static_cast<SumContext *>(ctx);
  int64_t s = 0;
  for (int64_t i = begin; i < end; ++i)
    s += i;
  c->sum += s;
  c->calls += 1;
}

} // namespace

TEST(ThreadPool, GlobalPoolAndCEntryPoint) {
  setGlobalThreads(3);
  EXPECT_EQ(globalThreadPool().threads(), 3);
  SumContext ctx;
  nnc_rt_parallel_for(sumRange, &ctx, 10000, 100);
  EXPECT_EQ(ctx.sum.load(), int64_t(10000) * 9999 / 2);
  EXPECT_EQ(ctx.calls.load(), 3);

  SumContext small;
  nnc_rt_parallel_for(sumRange, &small, 50, 100);
  EXPECT_EQ(small.sum.load(), 50 * 49 / 2);
  EXPECT_EQ(small.calls.load(), 1);

  setGlobalThreads(1);
  EXPECT_EQ(globalThreadPool().threads(), 1);
  SumContext one;
  nnc_rt_parallel_for(sumRange, &one, 10000, 1);
  EXPECT_EQ(one.calls.load(), 1);
  EXPECT_EQ(one.sum.load(), int64_t(10000) * 9999 / 2);

  setGlobalThreads(0);
  EXPECT_EQ(globalThreadPool().threads(), int(std::max(1u, std::thread::hardware_concurrency())));
}
