// \brief AUCC: area under the cost curve for a binary treatment, exactly as spec §4.1 (the DFCL code's Metric.py),
// in float64.
//
// Rows of the treated arm and of control (arm 0) are ranked by score, descending (ties: lower row index first, a
// deterministic stable order). Walking down the ranking, the cumulative incremental cost and revenue are
//     x = CT / n_T - CC / n_C,   y = RT / n_T - RC / n_C
// (CT, RT: cost and revenue summed over the treated rows so far; CC, RC over control rows; n_T, n_C the group totals).
// A point is recorded when x first reaches step * jbin (jbin = 1 .. Q-1, at most one point per row) and at the last
// row, after the origin; with step = DC / Q,
//     AUCC = (sum of recorded y) / (DR * (Q + 1))
// where DR, DC are the whole-sample differences in mean revenue and cost. With no control rows n_C is taken as 1 and
// DR, DC are the treated means. Random ranking gives about 0.5, a perfect one approaches 1.
#pragma once
#include <cstdint>  // for int64_t, int32_t, uint32_t
#include <vector>   // for std::vector

#include "solver/scores.h"  // for Scores

namespace dfcl::metrics {

struct AuccInput {
  int64_t n = 0;
  const int32_t* arm = nullptr;    // 0 = control, treated_arm = treated; other arms are left out
  const float* revenue = nullptr;  // observed
  const float* cost = nullptr;     // observed
  const double* score = nullptr;   // ranking score, larger = treat first
  int treated_arm = 1;
};

struct AuccResult {
  double aucc = 0;
  std::vector<double> x, y;  // the recorded points, origin first (at most Q + 1)
  int64_t n_treated = 0, n_control = 0;
  double dr = 0, dc = 0;  // DR, DC
  int quantiles = 0;
};

/// Ranks once (O(n log n)); result() and value() then stream over the ranking.
class Aucc {
 public:
  /// Throws DataError for missing columns, non-finite values, or no treated rows; ConfigError for quantiles < 1.
  explicit Aucc(const AuccInput& in, int quantiles = 200);
  AuccResult result() const;
  /// AUCC of a bootstrap replicate: row i counts counts[i] times (its copies are adjacent in the ranking).
  /// Returns NaN when the replicate has no treated rows or DR = 0.
  double value(const uint32_t* counts) const;
  int64_t rows() const { return static_cast<int64_t>(order_.size()); }  // treated + control rows
  int64_t input_rows() const { return in_.n; }                          // the length counts[] must have

 private:
  AuccResult run(const uint32_t* counts, bool keep_points) const;
  AuccInput in_;
  int q_;
  std::vector<uint32_t> order_;  // eligible rows, ranked
};

/// The score the DFCL code ranks by: s_i = (r_hat_i1 - r_hat_i0) / d, d = c_hat_i1 - c_hat_i0, with d replaced by
/// +1e-6 when |d| < 1e-6 (a negative d keeps its sign). `treated_arm` picks arm 1 of a multi-arm table.
std::vector<double> roi_scores(const solver::Scores& s, int treated_arm = 1);

}  // namespace dfcl::metrics
