// \brief Factor models in the table-based tools: decision factors θ (N x (M-1)) and step costs d_k as an N x M score
// table, so the dual solver, EOM and oracle metrics evaluate a factor model (DHCL, spec methods-dfcl-dhcl.md §5.4).
//
//   r_hat_ij = Σ_{k<=j} θ_ik d_k,   c_hat_ij = Σ_{k<=j} d_k   (arm 0: 0, 0)
// Step k then has Δc = d_k and slope Δr/Δc = θ_ik, so under non-increasing θ the dual policy
// argmax_j r_hat_ij - λ c_hat_ij is max{ j : θ_ij >= λ }: the same decisions as solver::FactorSort.
#pragma once
#include <cstdint>  // for int64_t, int32_t
#include <vector>   // for std::vector

#include "metrics/rct_sample.h"   // for RctSample
#include "metrics/score_table.h"  // for ScoreTable

namespace dfcl::metrics {

/// theta: n x steps row-major (steps = M - 1 >= 1); step_cost: `steps` values d_k > 0. Accumulates in float64,
/// stores float. Throws DataError for a non-finite factor (naming user and step) or a bad step cost.
ScoreTable factor_scores(const float* theta, int64_t n, int steps, const std::vector<double>& step_cost);

/// The RCT estimate of the step costs: d_k = mean(y^c | t = k) - mean(y^c | t = k-1), k = 1..M-1 (plain arm means;
/// unbiased under randomisation). Throws DataError when an arm has no rows or a step's estimate is not > 0 (arms
/// must be ordered by cost).
std::vector<double> rct_step_costs(const RctSample& sample);

}  // namespace dfcl::metrics
