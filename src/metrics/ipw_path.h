// \brief IpwPath: the IPW per-capita revenue and cost of a scorer's dual policy, for every lambda at once.
//
// The dual policy is pi_i(lambda) = argmax_j r_hat_ij - lambda c_hat_ij (ties: the cheaper arm, as solver::policy_at).
// On an RCT row only the factual arm t_i counts, and it counts exactly while pi_i(lambda) = t_i: a lambda interval
// given by the row's hull (solver/hull.h). If t_i is hull arm k, the row enters at the breakpoint into k (+inf for
// k = 0) and leaves at the breakpoint out of k (never, for the last hull arm); a row whose arm is not on its hull
// never counts. Sorting these <= 2 events per row once (O(N log N)) gives
//     rbar(lambda) = (1/N) sum over events with event lambda > lambda of (+-) r_i / p_{t_i}
// for any lambda by one binary search plus a block of at most 256 events, so a bisection costs microseconds and a
// bootstrap replicate only re-weights the events (weigh()). Memory: 16 bytes per event, no per-replicate copies.
#pragma once
#include <cstdint>     // for int64_t, uint32_t
#include <functional>  // for std::function
#include <vector>      // for std::vector

#include "metrics/lambda_bound.h"  // for LambdaBound
#include "metrics/policy_value.h"  // for PolicyValue
#include "metrics/rct_sample.h"    // for RctSample
#include "solver/scores.h"         // for Scores

namespace dfcl::metrics {

class IpwPath {
 public:
  /// Validates both inputs (same rows and arms) and builds the events on `threads` threads (0 = all cores).
  /// The sample's arrays must outlive the path (it keeps views, not copies); the scores are not kept.
  IpwPath(const solver::Scores& scores, const RctSample& sample, int threads = 0);

  /// Row weights of one evaluation: all ones, or bootstrap counts. Built by weigh(); holds block sums only.
  struct Weights {
    const uint32_t* counts = nullptr;      // per sample row; nullptr = 1
    double total = 0;                      // sum of the weights: the per-capita divisor
    std::vector<double> inv_p;             // 1 / p_j used for this evaluation
    std::vector<double> block_r, block_c;  // sums of the event terms before each block of events
  };
  /// O(N + events). With an empirical sample the propensities are recomputed from the counts.
  Weights weigh(const uint32_t* counts) const;

  /// IPW value of the dual policy at lambda >= 0 (lambda = +inf: everyone on their cheapest arm).
  PolicyValue at(double lambda) const { return at(lambda, unit_); }
  PolicyValue at(double lambda, const Weights& w) const;

  /// Walks lambda from +inf down to 0: fn(+inf, value) for the start, then fn(lambda_e, value) after each distinct
  /// event lambda, where value is the policy just below lambda_e (at lambda_e itself ties keep the cheaper arm).
  void sweep(const std::function<void(double lambda, const PolicyValue& v)>& fn) const;

  const LambdaBound& bound() const { return bound_; }
  const RctSample& sample() const { return s_; }
  int64_t events() const { return static_cast<int64_t>(ev_.size()); }

 private:
  struct Event {
    double lambda;
    uint32_t tag;  // row << 1 | leave
  };
  void add(const Event& e, const Weights& w, double& r, double& c) const;

  RctSample s_;
  LambdaBound bound_;
  std::vector<Event> ev_;  // sorted: lambda descending, then tag
  Weights unit_;
};

}  // namespace dfcl::metrics
