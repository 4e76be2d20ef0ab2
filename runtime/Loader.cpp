// The background batch loader. The worker sleeps until start() hands it an
// epoch, then fills a private batch (gather + augment, outside the lock) and
// swaps it into the ring when there is room. A generation counter bumped by
// start() tells it to drop the old epoch's work; next() swaps a ready batch
// out for the caller's old buffers, which the worker later fills again.
#include "runtime/Loader.h"

#include <fmt/format.h>

#include <utility>

namespace nnc::runtime {

BatchLoader::BatchLoader(const Dataset &data, int64_t batchSize, bool shuffle, uint64_t seed, Augmentation aug,
                         int depth)
    : iter_(data, batchSize, shuffle, seed), aug_(aug), seed_(seed), numBatches_(iter_.numBatches()) {
  if (depth < 1)
    throw Error(fmt::format("batch loader depth must be at least 1, got {}", depth));
  ring_.resize(size_t(depth));
  worker_ = std::thread([this] { run(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  worker_.join();
}

void BatchLoader::start(uint64_t epoch) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
    epoch_ = epoch;
    head_ = count_ = 0; // the ring keeps the dropped batches' buffers for reuse
    finished_ = false;
    error_ = nullptr;
  }
  wake_.notify_one();
}

bool BatchLoader::next(Tensor &xb, Tensor &yb) {
  Batch b;
  b.x.push_back(std::move(xb));
  b.y = std::move(yb);
  bool more = next(b);
  if (b.x.size() != 1)
    throw Error(fmt::format("internal: a data set of {} inputs is drawn in Batches", b.x.size()));
  xb = std::move(b.x[0]);
  yb = std::move(b.y);
  return more;
}

bool BatchLoader::next(Batch &out) {
  std::unique_lock<std::mutex> lock(mutex_);
  ready_.wait(lock, [&] { return count_ > 0 || finished_; });
  if (count_ == 0) {
    if (error_)
      std::rethrow_exception(std::exchange(error_, nullptr));
    return false;
  }
  Batch &b = ring_[head_];
  std::swap(b.x, out.x);
  std::swap(b.y, out.y);
  head_ = (head_ + 1) % ring_.size();
  --count_;
  lock.unlock();
  wake_.notify_one();
  return true;
}

void BatchLoader::run() {
  Batch work; // filled outside the lock, then swapped into the ring
  uint64_t generation = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stop_ || generation_ != generation; });
    if (stop_)
      return;
    generation = generation_;
    uint64_t epoch = epoch_;
    lock.unlock();

    std::exception_ptr error;
    bool more = true;
    iter_.reset(epoch);
    for (int64_t batchIndex = 0;; ++batchIndex) {
      try {
        more = iter_.next(work);
        if (more)
          augmentBatch(aug_, work.x.at(0), seed_, int64_t(epoch), batchIndex);
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      if (error || !more)
        break;
      wake_.wait(lock, [&] { return stop_ || generation_ != generation || count_ < ring_.size(); });
      if (stop_ || generation_ != generation)
        break;
      Batch &slot = ring_[(head_ + count_) % ring_.size()];
      std::swap(slot.x, work.x);
      std::swap(slot.y, work.y);
      ++count_;
      lock.unlock();
      ready_.notify_one();
    }
    // Every break holds the lock. Report the end (or the failure) only for
    // the epoch still wanted.
    if (generation_ == generation && (error || !more)) {
      finished_ = true;
      error_ = error;
      ready_.notify_one();
    }
  }
}

} // namespace nnc::runtime
