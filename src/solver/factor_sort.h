// \brief Allocation from decision factors by comparisons and sorting only (DHCL, spec methods-dfcl-dhcl.md §5.2,
// §5.4): no revenue or cost tables, no numerical solver.
//
// Arms 0..M-1 are ordered by cost; step k (k = 1..M-1) moves a user from arm k-1 to arm k at a unit cost d_k > 0
// (the same for every user, e.g. the RCT mean incremental cost of step k) and is worth θ_ik per unit of cost (the
// factor: the step's ROI). Under diminishing returns (θ_i1 >= θ_i2 >= ...), the dual policy at a price λ is
//   arm_i(λ) = max{ k : θ_ik >= λ }   (0 when θ_i1 < λ),
// and every budget's dual solution is a prefix of all (user, step) pairs sorted by θ descending (ties: lower user,
// then earlier step): a user's steps come out in order. Steps with θ <= 0 are never taken (they lose at any λ >= 0).
// A non-monotone user (θ_ik < θ_i,k+1 for some k) is made monotone first, by one of:
//   pool (default): pool adjacent violators, weighted by d_k: a run of steps whose later factor is higher becomes one
//     block with the d-weighted mean factor, taken all at once. The blocks' factors are the slopes of the upper
//     concave hull of the user's cumulative (cost, value) points, so the allocation equals the exact MCKP dual path on
//     factor_scores() (metrics/factor_scores.h), non-monotone users included.
//   running_min: θ'_ik = min_{l<=k} θ_il, every step taken on its own: a conservative reading (a later, better step
//     is valued at the worst earlier one).
// Equal adjacent factors are not pooled: the factor sort may take the first of them alone where the dual path, whose
// hull drops the collinear middle arm, moves the user two arms at once.
#pragma once
#include <cstdint>  // for int64_t, uint8_t
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace dfcl::solver {

enum class FactorMonotone { kPool, kRunningMin };
/// "pool" | "running_min" (ConfigError naming `what` otherwise).
FactorMonotone parse_factor_monotone(const std::string& name, const std::string& what);

struct FactorAllocation {
  double budget = 0;
  std::vector<uint8_t> arm;  // arm per user: the number of steps taken
  double spend = 0;          // Σ d_k over the steps taken
  double value = 0;          // Σ θ_ik d_k over the steps taken (the revenue of factor_scores' tables)
  int64_t steps_taken = 0;   // (user, step) pairs taken; a pooled block counts its steps
  /// λ, the factor of the last step taken (+inf when none is taken); next_lambda, the factor of the first step not
  /// taken (0 when all positive steps are taken). Every price in [next_lambda, lambda] gives this policy; next_lambda
  /// is DualPath's λ* on factor_scores().
  double lambda = 0, next_lambda = 0;
  bool saturated = false;  // every step with θ > 0 is taken
};

/// Sorts all steps once (O(S log S), S <= N (M-1)); each budget is then a binary search plus one pass over the
/// prefix. The factors and step costs are copied (as effective, monotone blocks).
class FactorSort {
 public:
  /// theta: N x steps row-major (steps = M - 1 >= 1, at most 255); step_cost: `steps` values d_k > 0.
  /// Throws DataError naming the user and step of a non-finite factor, or the step of a bad cost.
  FactorSort(const float* theta, int64_t n, int steps, const std::vector<double>& step_cost,
             FactorMonotone monotone = FactorMonotone::kPool);

  /// The dual solution at budget B (absolute, in the units of d): the longest prefix of the sorted steps whose
  /// spend fits in B. B < 0 is a ConfigError.
  FactorAllocation solve(double budget) const;
  /// The threshold policy at price λ: every step (block) with effective factor >= λ and > 0, by comparisons only.
  std::vector<uint8_t> policy_at(double lambda) const;

  int64_t users() const { return n_; }
  int steps() const { return steps_; }
  double max_spend() const { return prefix_spend_.empty() ? 0 : prefix_spend_.back(); }
  /// Users whose factors were not non-increasing (adjusted by the monotone rule).
  int64_t non_monotone_users() const { return non_monotone_; }
  /// Effective (monotone) factor of user i's step k (0-based k = step - 1).
  double effective_factor(int64_t user, int k) const;

 private:
  struct Block {
    double theta;   // effective factor
    double cost;    // Σ d over its steps
    int64_t user;
    uint8_t first;  // steps first .. last (0-based), taken together
    uint8_t last;
  };
  int64_t n_;
  int steps_;
  std::vector<double> d_;
  std::vector<Block> blocks_;  // positive-factor blocks, sorted: θ desc, user asc, step asc
  std::vector<double> prefix_spend_, prefix_value_;
  std::vector<float> effective_;  // N x steps
  int64_t non_monotone_ = 0;
};

/// One budget without keeping the sort.
FactorAllocation factor_allocate(const float* theta, int64_t n, int steps, const std::vector<double>& step_cost,
                                 double budget, FactorMonotone monotone = FactorMonotone::kPool);

}  // namespace dfcl::solver
