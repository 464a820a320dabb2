// \brief Oracle metrics on synthetic data, where the potential-outcome tables true_revenue / true_cost are known:
// the true value of any policy, the oracle allocation at a budget, and regret.
//
//   true value of a policy a:   R(a) = (1/N) sum_i r_{i,a_i},   C(a) = (1/N) sum_i c_{i,a_i}
//   oracle at per-capita budget b: the dual policy of the true tables that spends at most N b (solver::DualPath)
//   a scorer's policy at b: its own dual policy pi(lambda), with lambda chosen by bisection so that the TRUE cost
//       C(pi(lambda)) meets b (the feasible side: C <= b), i.e. the scorer's ranking stopped at the true budget
//   regret(b) = R(oracle) - R(policy at b);  relative regret = regret / (R(oracle) - R(everyone on control))
// Given the true tables as scores, the policy at b is the oracle allocation itself, so its regret is 0.
#pragma once
#include <cstdint>  // for int64_t, uint8_t, uint64_t
#include <memory>   // for std::unique_ptr
#include <vector>   // for std::vector

#include "metrics/policy_value.h"  // for PolicyValue
#include "solver/scores.h"         // for Scores

namespace dfcl::solver {
class DualPath;
}

namespace dfcl::metrics {

/// Per-capita true revenue and cost of a policy (one arm per row), in float64, on `threads` threads.
PolicyValue true_value(const solver::Scores& truth, const uint8_t* arm, int threads = 0);
/// Same, checking the policy's length and arms (DataError otherwise).
PolicyValue true_value(const solver::Scores& truth, const std::vector<uint8_t>& arm, int threads = 0);

/// Row `row`'s arm under the dual policy at lambda, by the rule of solver::policy_at (highest r - lambda c; ties to
/// the cheaper arm, then the lower index).
uint8_t dual_arm_of(const solver::Scores& s, int64_t row, double lambda);

/// A scorer's dual policy at the lambda where its true per-capita cost meets a budget.
struct TrueBudgetPolicy {
  double budget = 0, lambda = 0;
  PolicyValue value;       // true per-capita revenue and cost
  bool feasible = true;    // false: even the scorer's cheapest arms cost more than b (value = that policy)
  bool saturated = false;  // the scorer's whole path (lambda = 0) costs <= b
  int iterations = 0;
  std::vector<uint8_t> arm;  // the policy
};
/// Bisection on lambda in [0, lambda_bound(scores).hi], at most max_iter halvings, keeping the feasible side. Rows
/// whose arm is the same at both ends of the interval are settled, so the work is O(N M) plus the unsettled rows.
TrueBudgetPolicy true_budget_policy(const solver::Scores& scores, const solver::Scores& truth, double budget,
                                    int threads = 0, int max_iter = 60);

struct Regret {
  double budget = 0;
  PolicyValue oracle, policy, control;  // true per-capita values
  double oracle_lambda = 0, policy_lambda = 0;
  double oracle_lp_bound = 0;  // per capita: the LP relaxation's optimum, an upper bound on any policy at b
  bool policy_feasible = true;
  /// oracle.revenue - policy.revenue; for an infeasible policy (its cheapest decisions overspend b in truth) the whole
  /// lift oracle.revenue - control.revenue, as if it had treated nobody.
  double regret = 0, relative_regret = 0;
};

/// The true tables, their dual path (built once) and the everyone-on-control value; answers many budgets and scorers.
class Oracle {
 public:
  /// `truth` must outlive the oracle. Throws DataError on non-finite or mis-shaped tables.
  explicit Oracle(const solver::Scores& truth, int threads = 0);
  ~Oracle();
  /// The oracle allocation at per-capita budget b (ConfigError when b <= 0 or below the cheapest policy's cost).
  TrueBudgetPolicy at(double budget) const;
  /// Regret of a scorer's policy at b (the scores must cover the same rows and arms).
  Regret regret(const solver::Scores& scores, double budget) const;
  /// Regret of random targeting (scorers.h random_scores(seed)) at b, for scale. Builds the random scores on each
  /// call; for many budgets build them once and call regret().
  Regret random_regret(double budget, uint64_t seed = 0) const;
  PolicyValue control() const { return control_; }
  const solver::Scores& truth() const { return truth_; }

 private:
  solver::Scores truth_;
  int threads_;
  std::unique_ptr<solver::DualPath> path_;
  PolicyValue control_;
};

}  // namespace dfcl::metrics
