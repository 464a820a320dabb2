// \brief ConcatSource: several schema-v1 files read as one dataset (a trial and a log, a dataset in parts).
//
// Rows are the files' rows in list order: row r of file k is row offset_k + r. Every file keeps its own `source`
// column (trial or log) and its propensities; what the files must share is checked when the source opens:
//  - the features (names and order) and the arms (names and order);
//  - among the files that hold trial rows, the trial's arm propensities (rct_propensity): IPW weights are per arm.
// Optional columns: `propensity` is kept when every file has it, or when a file that lacks it holds trial rows only
// (its rows get their file's rct_propensity of their arm); otherwise it is left out and the log says which file
// has none. `true_revenue` / `true_cost` are kept when every file has them.
// The split of a row (SplitSpec) is decided by its position within its own file (split_key), so a file's
// train / validation / test rows are the same whether it is read alone or as part of a list.
#pragma once
#include <cstdint>  // for int64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "data/source.h"  // for RowSource

namespace dfcl::data {

class ConcatSource final : public RowSource {
 public:
  /// `parts` in order (at least one); `key` names the setting they came from ("train.data") in messages. Throws
  /// DataError naming both files and the first difference when they do not fit together.
  ConcatSource(std::vector<std::unique_ptr<RowSource>> parts, std::string key);

  const Meta& meta() const override { return meta_; }
  /// The first file's chunk height; a chunk that straddles two files is read from both.
  int64_t chunk_rows() const override { return chunk_; }
  void read(int64_t begin, int64_t count, Table& out) override;
  void read_source(int64_t begin, int64_t count, std::vector<uint8_t>& out) override;
  /// "a.h5 + b.h5".
  std::string name() const override { return name_; }
  /// The row's position within its own file.
  int64_t split_key(int64_t row) const override;

  size_t parts() const { return parts_.size(); }
  /// The file that holds row `row`.
  size_t part_of(int64_t row) const;
  /// First row of each file, then the total (parts() + 1 values).
  const std::vector<int64_t>& offsets() const { return off_; }

 private:
  std::vector<std::unique_ptr<RowSource>> parts_;
  std::vector<int64_t> off_;
  std::vector<bool> fill_propensity_;  // per file: no propensity column, its (trial) rows get rct_propensity[arm]
  Meta meta_;
  int64_t chunk_ = 1;
  std::string name_;
};

}  // namespace dfcl::data
