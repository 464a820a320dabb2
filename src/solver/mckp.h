// \brief Budget allocation as a multiple-choice knapsack, solved exactly along its Lagrangian dual path.
//
//   max_z sum_ij z_ij r_ij   s.t.  sum_ij z_ij c_ij <= B,  one arm per user.
//
// DualPath keeps every user's hull (hull.h) and the breakpoints of all users. Sweeping lambda down from +inf
// moves users one hull segment at a time; a segment adds (dc > 0, dr > 0) at slope dr/dc = its lambda.
// Taking segments in decreasing lambda (ties: lower user, then earlier segment) gives the dual policy for every
// budget; the first segment that no longer fits is cut fractionally in the LP relaxation, so
//   F(dual) <= F(integer optimum) <= LP bound = F(dual) + (fraction of that one segment's dr) <= F(dual) + max_i r_i.
// Spend and revenue are accumulated in double; the assignment is re-scored from the inputs.
#pragma once
#include <cstdint>  // for int64_t, uint32_t, uint16_t, uint8_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "solver/scores.h"  // for Scores

namespace dfcl::solver {

struct SolveOptions {
  /// After the dual prefix, take any later segment that still fits (in lambda order); reported separately.
  bool greedy_fill = false;
  /// A budget below the minimum possible spend: false = throw ConfigError, true = return the cheapest policy, marked clamped.
  bool clamp_below_min = false;
};

struct Allocation {
  double budget = 0;
  double lambda = 0;            // lambda*: the dual price at which the budget binds (0 when saturated)
  std::vector<uint8_t> arm;     // chosen arm per user (the dual policy, plus greedy fill when asked)
  double spend = 0;             // sum of c over chosen arms (dual policy only)
  double revenue = 0;           // sum of r over chosen arms (dual policy only)
  double lp_bound = 0;          // optimum of the LP relaxation (= G(lambda*)); >= the integer optimum
  double gap_bound = 0;         // lp_bound - revenue: the integer optimum is within this of `revenue`
  double max_revenue = 0;       // max_ij r_ij: the paper's (looser) bound on the gap when revenues are >= 0
  bool saturated = false;       // budget >= maximum useful spend: every user gets their best-revenue arm
  bool clamped = false;         // budget < minimum spend and clamp_below_min: cheapest policy returned
  // Greedy fill (when asked): the leftover budget spent on segments that still fit.
  double fill_spend = 0, fill_revenue = 0;
  int64_t fill_users = 0;
  std::string note;             // human-readable remark on saturation or clamping
};

/// A point of the spend-to-revenue curve: after taking every segment with slope > lambda.
struct CurvePoint {
  double lambda, spend, revenue;
};

class DualPath {
 public:
  /// Builds hulls and breakpoints in O(N M log M); `threads` for the per-user work (0 = all cores).
  explicit DualPath(const Scores& s, int threads = 0);

  /// One budget: one O(S) pass over the S segments plus a sort of the few in the bucket where it binds.
  Allocation solve(double budget, const SolveOptions& opt = {}) const;
  /// The whole curve, sorted once in O(S log S); `max_points` > 0 thins it evenly (the ends are kept).
  std::vector<CurvePoint> curve(int64_t max_points = 0) const;

  double min_spend() const { return base_spend_; }                  // every user on their cheapest arm
  double max_spend() const { return base_spend_ + total_dc_; }      // every user on their best-revenue arm
  double min_revenue() const { return base_revenue_; }
  double max_revenue_total() const { return base_revenue_ + total_dr_; }
  int64_t segments() const { return segments_; }
  const Scores& scores() const { return s_; }

 private:
  struct Key;  // (lambda, user, k) total order
  Key key(int64_t user, int k) const;  // segment k of a user's hull
  template <class KeepBucket>
  void collect(KeepBucket keep, std::vector<Key>& out) const;  // every segment whose lambda bucket passes `keep`
  void assign(const std::vector<uint8_t>& taken_count, Allocation& a) const;

  Scores s_;
  int threads_;
  std::vector<uint8_t> hull_;       // n x m, first hull_size_[i] entries used
  std::vector<uint8_t> hull_size_;  // per user
  std::vector<double> hist_;        // spend (sum of dc) per slope bucket, over all segments
  // Slope bucket of segment k of user i at [i * (m - 1) + k] (2 bytes a segment): a budget's pass compares buckets
  // instead of dividing again; exact slopes are recomputed only in the bucket where the budget binds.
  std::unique_ptr<uint16_t[]> seg_bucket_;
  // Segments (consecutive hull pairs) are not stored: they are recomputed from the hulls in each pass,
  // which keeps memory at n x m bytes beyond the inputs.
  int64_t segments_ = 0;
  double base_spend_ = 0, base_revenue_ = 0, total_dc_ = 0, total_dr_ = 0, max_r_ = 0;
};

/// The plain bisection on lambda (spec §2.3, deployment version): a reference and a baseline.
/// Spend C(lambda) uses predicted costs; stops when hi - lo < eps * hi or after max_iter halvings.
Allocation solve_bisection(const Scores& s, double budget, int max_iter = 60, double eps = 1e-12);

/// The dual policy at a given lambda: argmax_j r_ij - lambda c_ij (ties: the hull's order, i.e. cheaper arm).
void policy_at(const Scores& s, double lambda, std::vector<uint8_t>& arm);

}  // namespace dfcl::solver
