// \brief ShardedLoader: logical shards, their loaders, and the rank's part of each global batch.
#include "data/sharded_loader.h"

#include <fmt/format.h>  // for fmt::format

#include "core/error.h"  // for ConfigError, DataError

namespace dfcl::data {

ShardedLoader::ShardedLoader(RowSource& source, const LoaderOptions& global, int logical_shards)
    : src_(source), L_(logical_shards) {
  const int W = global.world;
  if (L_ < 1 || L_ % W != 0)
    throw ConfigError(fmt::format("train.logical_shards = {} must be a positive multiple of the {} ranks (a resumed "
                                  "run keeps its checkpoint's value: resume on a number of ranks that divides it)",
                                  L_, W));
  if (global.batch_size < 1 || global.batch_size % L_ != 0)
    throw ConfigError(fmt::format("train.batch_size = {} (the global batch) must be a multiple of train.logical_shards "
                                  "= {}",
                                  global.batch_size, L_));
  block_ = global.batch_size / L_;
  local_batch_ = global.batch_size / W;
  const int per_rank = L_ / W;
  for (int k = 0; k < per_rank; ++k) {
    LoaderOptions o = global;
    o.batch_size = block_;
    o.rank = global.rank * per_rank + k;
    o.world = L_;
    o.shuffle_buffer = global.shuffle_buffer / L_;
    loaders_.push_back(std::make_unique<Loader>(source, o));
  }
  shard_rows_ = loaders_.front()->shard_rows();
  batches_per_epoch_ = loaders_.front()->batches_per_epoch();
}

ShardedLoader::~ShardedLoader() = default;

int64_t ShardedLoader::rows_left_out_per_epoch() const {
  int64_t n = 0;
  for (const auto& l : loaders_) n += l->rows_left_out_per_epoch();
  return n;
}

void ShardedLoader::start_epoch(int64_t epoch) {
  for (auto& l : loaders_) l->start_epoch(epoch);
}

bool ShardedLoader::next(Table& batch) {
  if (loaders_.size() == 1) return loaders_.front()->next(batch);
  batch.with_weight = true;
  batch.reset(src_.meta(), local_batch_);
  int64_t j = 0;
  for (size_t k = 0; k < loaders_.size(); ++k) {
    if (!loaders_[k]->next(part_)) {
      if (k == 0) return false;
      throw DataError(fmt::format("{}: logical shard {} ended its epoch before the others; this is a bug in the "
                                  "loader's batch plan",
                                  src_.name(), k));
    }
    for (int64_t i = 0; i < part_.rows; ++i) batch.copy_row(j++, part_, i);
  }
  return true;
}

}  // namespace dfcl::data
