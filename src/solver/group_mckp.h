// \brief The group-level budget programme of cluster allocation (docs/methods.md, "Cluster allocation"):
// K groups, M arms; giving group g arm j earns value[g][j] and spends cost[g][j] (the group's size times its per-user
// means).
//
//   S2 (one arm per group):   max sum_g value[g][a_g]   s.t.  sum_g cost[g][a_g] <= B.
//        A multiple-choice knapsack over K items. solve_groups_exact solves it by depth-first branch and bound on the
//        LP relaxation (the bound of the dual path, mckp.h), branching on the LP's one fractional group; it proves
//        optimality, or stops at a node limit and reports the gap to the best open bound.
//   S1 (a group's users split across arms): the LP relaxation itself. Its optimum takes every group whole except at
//        most one, which splits between two adjacent arms of its hull (solve_groups_lp).
// Plain arrays, double precision, no torch.
#pragma once
#include <cstdint>  // for int64_t
#include <vector>   // for std::vector

namespace dfcl::solver {

struct GroupProblem {
  int k = 0, m = 0;
  std::vector<double> value, cost;  // k x m, row-major
  /// Every group on its cheapest arm (ties: the higher value): the least any policy spends.
  double min_cost() const;
  /// Every group on its highest-value arm (ties: the cheaper): spending more buys nothing.
  double max_useful_cost() const;
  /// Throws DataError for sizes that do not match, or a non-finite value or cost (naming the group and arm).
  void validate() const;
};

/// An S2 plan: one arm per group.
struct GroupPlan {
  double budget = 0;
  std::vector<int> arm;   // per group
  double value = 0, cost = 0;
  double bound = 0;       // an upper bound on the optimum (= value when proven optimal)
  double gap = 0;         // bound - value (0 when optimal)
  int64_t nodes = 0;      // branch-and-bound nodes visited
  bool optimal = false;   // proven optimal (no node limit hit)
};

/// S2 exactly. Throws ConfigError when `budget` is below min_cost() (no plan fits), naming both.
GroupPlan solve_groups_exact(const GroupProblem& p, double budget, int64_t node_limit = 2000000);

/// An S1 plan: the LP optimum. Every group on `arm` except `split_group` (when >= 0), whose users go `split_share` to
/// `split_arm` and the rest to `arm[split_group]`.
struct GroupSplit {
  double budget = 0;
  std::vector<int> arm;
  int split_group = -1, split_arm = -1;
  double split_share = 0;
  double value = 0, cost = 0;
};
/// S1. Throws ConfigError when `budget` is below min_cost().
GroupSplit solve_groups_lp(const GroupProblem& p, double budget);

}  // namespace dfcl::solver
