// \brief Streaming, sharded, shuffled mini-batches over any RowSource, in memory bounded by the buffers.
//
// Invariants (what multi-rank training relies on):
//  - Shard r of R owns a contiguous row range; ranges are disjoint, cover all rows, and hold equal
//    numbers of eligible rows (after split and source filters) to within one row.
//  - Every shard yields exactly batches_per_epoch() batches, computed identically on every rank
//    without communication, so no rank ever waits for a collective that another rank skips.
//  - For a fixed (seed, epoch, rank, world) the batch sequence is identical run to run.
//  - Memory is O(shuffle_buffer + chunk_rows + batch_size) rows, independent of N.
#pragma once
#include <cstdint>  // for int64_t, uint64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "core/rng.h"     // for Rng
#include "data/prefetch.h"  // for ChunkPrefetcher
#include "data/schema.h"  // for Table
#include "data/source.h"  // for RowSource
#include "data/split.h"   // for Split, SplitSpec

namespace dfcl::data {

enum class SourceFilter { kAll, kRct, kObservational };
/// How shards with unequal row counts get equal batch counts.
enum class Remainder {
  kDropLast,  // floor(min_r rows_r / B) full batches per shard; leftover rows rotate with the shuffle
  kPad,       // ceil(max_r rows_r / B) batches; missing rows are padding with weight 0
};

SourceFilter parse_source_filter(const std::string& s);
Remainder parse_remainder(const std::string& s);

struct LoaderOptions {
  int64_t batch_size = 1024;
  int rank = 0, world = 1;
  uint64_t seed = 0;
  bool shuffle = true;
  int64_t shuffle_buffer = 65536;  // rows held for shuffling (0 = chunk order only)
  Split split = Split::kAll;
  SplitSpec split_spec;
  SourceFilter source = SourceFilter::kAll;
  Remainder remainder = Remainder::kDropLast;
  bool prefetch = true;  // read and validate the next chunk on a background thread (same batches either way)
};

class Loader {
 public:
  Loader(RowSource& source, const LoaderOptions& options);
  ~Loader();

  /// Same value on every rank: the number of batches each shard yields per epoch.
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  /// Eligible rows (after split and source filters) in each shard, for every rank.
  const std::vector<int64_t>& shard_rows() const { return shard_rows_; }
  int64_t shard_begin() const { return begin_; }
  int64_t shard_end() const { return end_; }
  /// Rows of this shard not seen per epoch under kDropLast (reported, never silent).
  int64_t rows_left_out_per_epoch() const;

  /// Restarts iteration for `epoch` (chunk order and buffer draws depend on seed and epoch).
  void start_epoch(int64_t epoch);
  /// Fills `batch` (with a weight column) and returns true, or returns false at the end of the epoch.
  bool next(Table& batch);
  /// Largest number of bytes held in the loader's buffers so far.
  int64_t peak_buffer_bytes() const { return peak_bytes_; }

 private:
  bool eligible(int64_t row_id, uint8_t src) const;
  void plan_shards();
  bool next_chunk();                      // reads the next chunk of the shard; false when exhausted
  bool pull(Table& dst, int64_t j);       // moves one input row into dst[j]; false when exhausted

  RowSource& src_;
  LoaderOptions opt_;
  int64_t begin_ = 0, end_ = 0, batches_per_epoch_ = 0;
  std::vector<int64_t> shard_rows_;
  std::vector<int64_t> chunk_eligible_;  // eligible rows per chunk (filtered plans only; empty = all eligible)
  // epoch state
  std::unique_ptr<ChunkPrefetcher> reader_;  // this epoch's chunks, in shuffled order, filtered
  Table chunk_, buffer_, last_;
  std::vector<uint8_t> src_col_;
  int64_t buffered_ = 0, chunk_pos_ = 0, emitted_batches_ = 0;
  bool have_last_ = false;
  Rng rng_{0, 0};
  int64_t peak_bytes_ = 0;
};

}  // namespace dfcl::data
