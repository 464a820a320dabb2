// \brief ScoreTable: owned per-user, per-arm scores (r_hat, c_hat, N x M) and checks on any solver::Scores view.
#pragma once
#include <cstdint>  // for int64_t
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "solver/scores.h"  // for Scores

namespace dfcl::metrics {

/// Scores that own their storage (a scorer's output, a scores file). Row-major N x M; arm 0 is control.
struct ScoreTable {
  int64_t n = 0;
  int m = 0;
  std::vector<float> r, c;

  /// A read-only view for the solver and the metrics; valid while this table lives and is not resized.
  solver::Scores view() const { return solver::Scores{n, m, r.data(), c.data()}; }
};

/// Checks a scores view: 1 <= m <= 64 arms, non-null arrays, finite values. `what` names the scores in messages
/// ("scores 'model.h5'"). Throws DataError naming the row and arm of the first bad value and the fix.
void check_scores(const solver::Scores& s, const std::string& what);

/// Checks that scores cover the same rows and arms as a sample of `n` rows and `m` arms.
void check_same_shape(const solver::Scores& s, int64_t n, int m, const std::string& what);

}  // namespace dfcl::metrics
