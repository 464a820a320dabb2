// \brief Train / validation / test splits: which rows a run trains on, validates on and is tested on, and which
// split a held-out evaluation reads by default.
//
// A row's split is a stable hash of its position within its own file (RowSource::split_key), so it never depends on
// sharding, batch size, the reader, or the other files a run reads alongside it.
#pragma once
#include <cstdint>  // for int64_t, uint64_t
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace dfcl::data {

/// kHeldOut: every row outside the train split (validation and test): the rows a model did not fit, where an IPW
/// estimate of what its decisions spend is unbiased.
enum class Split { kAll, kTrain, kValidation, kTest, kHeldOut };

/// "all", "train", "validation" (or "val"), "test", "held_out"; ConfigError otherwise.
Split parse_split(const std::string& s);
std::string to_string(Split s);

/// Fractions train / validation (test gets the rest) and the hash seed.
struct SplitSpec {
  double train = 0.8, validation = 0.1;
  uint64_t seed = 0;
  /// The split of the row whose split key (RowSource::split_key) is `key`.
  Split of(int64_t key) const;
  /// The share of rows in `s` (1 for kAll).
  double fraction(Split s) const;
  /// True when the row whose split key is `key` belongs to `which` (every row for kAll).
  bool contains(Split which, int64_t key) const;
};

/// True when two paths name the same file (compared after resolving `.`, `..` and symbolic links).
bool same_file(const std::string& a, const std::string& b);
/// True when any of `files` is one of `trained_on`.
bool shares_file(const std::vector<std::string>& files, const std::vector<std::string>& trained_on);

/// The split a held-out read (validation, evaluation) takes by default: `held_out` (the validation or test split)
/// when one of `files` was also trained on, since its other rows were training rows; kAll for files the model never
/// saw, which are held out whole.
Split default_split(const std::vector<std::string>& files, const std::vector<std::string>& trained_on, Split held_out);

}  // namespace dfcl::data
