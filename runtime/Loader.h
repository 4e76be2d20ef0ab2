// A background batch loader: one extra thread gathers and augments the next
// minibatches while the caller computes on the current one. Its output is
// exactly BatchIterator's followed by augmentBatch, whatever the timing.
#pragma once

#include "runtime/Augment.h"
#include "runtime/Data.h"

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace nnc::runtime {

/// Produces an epoch's minibatches on a background thread (gathering rows in
/// the BatchIterator's order, then augmenting them) while the caller computes
/// on earlier ones; holds at most `depth` ready batches. Batches come out in
/// the same order with the same content as a BatchIterator with the same
/// (data, batchSize, shuffle, seed), augmented by augmentBatch(aug, xb, seed,
/// epoch, batchIndex). Deterministic regardless of timing.
///
/// All methods are meant for one caller thread. The data set must outlive the
/// loader and must not change while an epoch is being produced.
class BatchLoader {
public:
  /// Throws Error for a bad batch size or depth (< 1) or an inconsistent data
  /// set. Augmentation errors surface from next().
  BatchLoader(const Dataset &data, int64_t batchSize, bool shuffle, uint64_t seed, Augmentation aug = {},
              int depth = 3);
  BatchLoader(const BatchLoader &) = delete;
  BatchLoader &operator=(const BatchLoader &) = delete;

  /// Stops and joins the thread, also mid-epoch (after at most the batch being
  /// produced).
  ~BatchLoader();

  /// Begins producing epoch `epoch`; batches of any unfinished epoch, ready or
  /// not, are dropped.
  void start(uint64_t epoch);

  /// Moves the next batch of the epoch into xb and yb (blocking until it is
  /// ready) and returns true, or returns false at the end of the epoch (and
  /// before the first start()). The old contents of xb and yb are recycled as
  /// buffers for later batches, so their data pointers change every call. An
  /// exception thrown on the worker (e.g. augmentBatch's Error) is rethrown
  /// here, after the batches before it; the epoch then ends.
  bool next(Tensor &xb, Tensor &yb);
  /// The same for a data set of any number of inputs.
  bool next(Batch &b);

  /// Batches per epoch: ceil(size / batchSize).
  int64_t numBatches() const { return numBatches_; }

private:
  void run();

  // Only the worker touches iter_ (after construction).
  BatchIterator iter_;
  const Augmentation aug_;
  const uint64_t seed_;
  const int64_t numBatches_;

  // Guarded by mutex_: a ring of ready batches [head_, head_ + count_).
  std::mutex mutex_;
  std::condition_variable ready_; ///< a batch, the epoch's end or an error is there for next()
  std::condition_variable wake_;  ///< space in the ring, a new epoch or stop for the worker
  std::vector<Batch> ring_;
  size_t head_ = 0, count_ = 0;
  uint64_t generation_ = 0; ///< counts start() calls; the worker drops work of an older one
  uint64_t epoch_ = 0;
  bool finished_ = true; ///< the worker produced the epoch's last batch (or failed)
  std::exception_ptr error_;
  bool stop_ = false;

  std::thread worker_; // last: starts after everything above is initialized
};

} // namespace nnc::runtime
