// \brief Built-in reference scorers for evaluation: random targeting, and a ranker that knows the true per-arm ROI.
// (The oracle scorer is the true tables themselves: solver::Scores{n, m, true_revenue, true_cost}.)
#pragma once
#include <cstdint>  // for int64_t, uint64_t

#include "metrics/score_table.h"  // for ScoreTable
#include "solver/scores.h"        // for Scores

namespace dfcl::metrics {

/// Random targeting: r_hat_i0 = c_hat_i0 = 0 and, for each treatment j, r_hat_ij ~ U(0, 1), c_hat_ij = 1. Its dual
/// policy treats a random subset of users (growing as lambda falls) with a uniformly random treatment arm.
/// Row i's draws depend only on (seed, i).
ScoreTable random_scores(int64_t n, int m, uint64_t seed, int threads = 0);

/// The true return on investment of every treatment against control, as scores: r_hat_i0 = c_hat_i0 = 0,
/// r_hat_ij = (r_ij - r_i0) / d with d = c_ij - c_i0 (floored at 1e-6 as in roi_scores), c_hat_ij = 1. For two arms
/// its AUCC score is exactly the true ROI; for more arms it ranks by ROI and ignores the cost scale.
ScoreTable true_roi_scores(const solver::Scores& truth, int threads = 0);

}  // namespace dfcl::metrics
