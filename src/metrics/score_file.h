// \brief Scores files: an HDF5 file with datasets `r_hat` and `c_hat` (N x M float32, the dataset's row order),
// the hand-off between a model (or any external scorer) and `dfcl evaluate` / `dfcl allocate`.
#pragma once
#include <cstdint>  // for int64_t
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "metrics/score_table.h"  // for ScoreTable
#include "solver/scores.h"        // for Scores

namespace dfcl::metrics {

/// Reads the rows listed in `rows` (ascending; empty = every row) in blocks, so memory is the selected rows only.
/// `expect_rows` / `expect_arms` (>= 0) are the dataset's shape: a file of another shape is a DataError naming both.
/// Throws DataError for a missing file or dataset, IoError in a build without HDF5.
ScoreTable read_score_file(const std::string& path, const std::vector<int64_t>& rows = {}, int64_t expect_rows = -1,
                           int expect_arms = -1);

/// Writes `s` as `r_hat` and `c_hat` (chunked, deflate level 1). Throws IoError when the file cannot be written.
void write_score_file(const std::string& path, const solver::Scores& s);

}  // namespace dfcl::metrics
