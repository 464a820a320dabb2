// \brief ChunkPrefetcher: reads a fixed sequence of row ranges from a RowSource one range ahead of its consumer,
// on a background thread, so that decompression and validation overlap with the consumer's work.
//
// Invariants: only the worker thread touches the RowSource while a prefetcher lives (HDF5 is not thread-safe);
// ranges come out in the order given (determinism does not depend on timing); memory is three chunk tables.
#pragma once
#include <atomic>              // for std::atomic
#include <condition_variable>  // for std::condition_variable
#include <cstdint>             // for int64_t
#include <exception>           // for std::exception_ptr
#include <functional>          // for std::function
#include <mutex>               // for std::mutex
#include <thread>              // for std::thread
#include <utility>             // for std::pair
#include <vector>              // for std::vector

#include "data/schema.h"  // for Table
#include "data/source.h"  // for RowSource

namespace dfcl::data {

class ChunkPrefetcher {
 public:
  /// Runs on the worker after each read, e.g. to drop rows the consumer does not want.
  using Prepare = std::function<void(Table&)>;

  /// `background = false` reads synchronously in next() (same results, no thread).
  ChunkPrefetcher(RowSource& source, std::vector<std::pair<int64_t, int64_t>> ranges, Prepare prepare,
                  bool background);
  ~ChunkPrefetcher();
  ChunkPrefetcher(const ChunkPrefetcher&) = delete;
  ChunkPrefetcher& operator=(const ChunkPrefetcher&) = delete;

  /// Swaps the next prepared range into `out` and returns true, or returns false after the last one.
  /// An error the worker met (a bad row, a corrupt chunk) is rethrown here, on the consumer's thread.
  bool next(Table& out);
  /// Largest number of bytes held in the prefetcher's own two tables so far.
  int64_t peak_bytes() const { return peak_bytes_.load(); }

 private:
  void run();  // worker loop
  void load(size_t k, Table& t);

  RowSource& src_;
  std::vector<std::pair<int64_t, int64_t>> ranges_;  // [begin, end) row ranges, in delivery order
  Prepare prepare_;
  bool background_;
  size_t next_ = 0;  // synchronous mode: next range to read

  std::thread worker_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Table slot_, spare_;  // slot_: ready for the consumer when full_; spare_: the worker's read target
  bool full_ = false, done_ = false, stop_ = false;
  std::exception_ptr error_;
  std::atomic<int64_t> peak_bytes_{0};
};

}  // namespace dfcl::data
