// \brief ShardedLoader: a global batch sequence that does not depend on the number of ranks.
//
// The rows are cut into L logical shards (Loader with rank s of world L). Each logical shard streams, shuffles and
// batches its rows on its own (seeded by the run's seed, the epoch and s), so the global batch k is the concatenation,
// in shard order, of batch k of every logical shard: the same rows in the same order whether 1, 2 or L processes read
// them. Rank r of W (W divides L) runs logical shards [r L/W, (r+1) L/W) and yields their part of each global batch.
// This is what makes 2 ranks x b equal 1 rank x 2b, and lets a checkpoint written by W ranks resume on W' ranks
// (L is fixed when a run starts and saved in its checkpoints; docs/distributed.md).
//
// train.shuffle_buffer is the global shuffle window: each logical shard holds shuffle_buffer / L rows.
#pragma once
#include <cstdint>  // for int64_t
#include <memory>   // for std::unique_ptr
#include <vector>   // for std::vector

#include "data/loader.h"  // for Loader, LoaderOptions

namespace dfcl::data {

class ShardedLoader {
 public:
  /// `global` holds the GLOBAL batch size and the process's rank and world; `logical_shards` = L (a multiple of
  /// world; the global batch a multiple of L). Throws ConfigError naming train.batch_size / train.logical_shards.
  ShardedLoader(RowSource& source, const LoaderOptions& global, int logical_shards);
  ~ShardedLoader();

  int logical_shards() const { return L_; }
  /// Batches per epoch: the same on every rank and for every world size dividing L.
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  /// Rows this rank contributes to each global batch (global batch / world).
  int64_t local_batch() const { return local_batch_; }
  /// Rows one logical shard contributes to each global batch (global batch / L): the deterministic mode's block.
  int64_t block_rows() const { return block_; }
  /// Eligible rows of each logical shard (all L, the same on every rank).
  const std::vector<int64_t>& shard_rows() const { return shard_rows_; }
  /// Rows of this rank's logical shards not seen per epoch under drop_last.
  int64_t rows_left_out_per_epoch() const;

  void start_epoch(int64_t epoch);
  /// This rank's part of the next global batch (local_batch() rows, its logical shards in order); false at the end.
  bool next(Table& batch);

 private:
  RowSource& src_;
  int L_ = 1;
  int64_t batches_per_epoch_ = 0, local_batch_ = 0, block_ = 0;
  std::vector<int64_t> shard_rows_;
  std::vector<std::unique_ptr<Loader>> loaders_;  // this rank's logical shards
  Table part_;
};

}  // namespace dfcl::data
