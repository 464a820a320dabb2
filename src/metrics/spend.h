// \brief What decisions really spend: how lambda is set for a budget (budget calibration), the IPW estimate of a
// policy's true spend with its confidence interval, the verdict against the budget, and cost calibration per arm.
//
// A scorer's dual policy pi_i(lambda) = argmax_j r_hat_ij - lambda c_hat_ij spends the TRUE costs of the arms it picks,
// not c_hat. Two ways to set lambda for a per-capita budget b (docs/metrics.md, "Budgets in true spend"):
//   predicted: lambda such that the predicted spend (1/N) sum_i c_hat_{i,pi_i} on the rows decided for meets b: all a
//              deployment without labels can do; honest only when c_hat is calibrated;
//   trial:     lambda such that the IPW estimate of the true spend on trial rows meets b (Bi-DFCL Algorithm 2, the
//              papers' EOM protocol; metrics/eom.h), then applied to every user: needs only the ranking.
// Either way the IPW spend of the resulting decisions on trial rows, with its CI, says whether they meet b.
#pragma once
#include <cstdint>     // for int64_t, uint8_t
#include <functional>  // for std::function
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "metrics/eom.h"           // for EomPoint
#include "metrics/estimate.h"      // for Estimate
#include "metrics/ipw_path.h"      // for IpwPath
#include "metrics/policy_value.h"  // for PolicyValue
#include "metrics/rct_sample.h"    // for RctSample
#include "solver/scores.h"         // for Scores

namespace dfcl::metrics {

enum class BudgetCalibration { kPredicted, kTrial };

/// "predicted", "trial", or "auto" (= trial when `have_trial`, else predicted). ConfigError naming `key` otherwise.
BudgetCalibration parse_budget_calibration(const std::string& value, bool have_trial, const std::string& key);
std::string to_string(BudgetCalibration c);

/// IPW per-capita spend (1/N) sum_i c_i / p_{t_i} 1[pi_i = t_i] of a fixed policy on trial rows, with its CI at
/// `level`. With the sample's own arm shares as propensities (s.empirical) the estimator is the sum over arms of the
/// arm's mean of c_i 1[pi_i = j], and its variance the sum of the within-arm variances over N_j (stratified); with
/// design propensities it is a plain mean of the per-row terms. Throws DataError when the policy and sample disagree.
Estimate ipw_spend(const RctSample& s, const uint8_t* policy, double level = 0.95);

/// (1/N) sum_i c_hat_{i,pi_i}: what the scorer itself expects the policy to spend per user.
double predicted_spend(const solver::Scores& scores, const uint8_t* policy);

/// A policy's spend against its budget: overspends when the whole CI lies above b, underspends when it lies below.
enum class SpendVerdict { kMeets, kOverspends, kUnderspends };
SpendVerdict judge_spend(const Estimate& spend, double budget);
/// "meets", "OVERSPENDS", "underspends".
std::string to_string(SpendVerdict v);

/// lambda of a per-capita budget b by the scorer's predicted costs on the rows decided for: the smallest lambda whose
/// dual policy's predicted spend (1/N) sum c_hat is at most b (the exact dual path, solver::DualPath; b below the
/// cheapest policy gives that policy's lambda). `reached` = the budget is within the path's spend range.
double predicted_lambda(const solver::Scores& scores, double budget, bool* reached = nullptr, int threads = 0);
/// lambda of b by the IPW estimate of the true spend on trial rows (the EOM bisection, eom.h) on `calibration`;
/// `reached` = the bisection met b within its tolerance, or b lies in a jump of the IPW spend at one lambda (then
/// lambda is on the side that does not overspend; EomPoint::stepped).
double trial_lambda(const IpwPath& calibration, double budget, bool* reached = nullptr);

/// Trial calibration that also splits a tie. When many users switch arm at the same lambda (a scorer whose outputs
/// saturate gives a whole group one breakpoint), the IPW spend jumps over the budget there, and neither side of the
/// jump meets it (a DHCL model of the reproduction: 0.177 or 0.322 per user for a budget of 0.3). The users that
/// switch between lambda_over and lambda (the tied group) then take their costlier arm when a fixed hash of their row
/// index is below `fill`, the largest share whose IPW spend on the trial rows stays within b: the LP's fractional
/// solution at lambda*, rounded by a deterministic random order. fill = 0 when no tie needed splitting.
struct TrialCalibration {
  double lambda = 0, lambda_over = 0, fill = 0;
  int64_t tied_trial_rows = 0;  // trial rows in the tied group
  bool reached = false;
  EomPoint point;  // the bisection on the calibration rows' estimated spend (before any tie split)
};
TrialCalibration trial_calibrate(const solver::Scores& trial_scores, const IpwPath& calibration, double budget);
/// The same for any estimate of the spend: `point` is the bisection on it (eom_bisect over an EstimatorPath) and
/// `spend_of(policy)` the estimate of a policy's spend on the calibration rows (PolicyEstimator::value).
TrialCalibration trial_calibrate(const solver::Scores& trial_scores, const EomPoint& point, double budget,
                                 const std::function<double(const uint8_t*)>& spend_of);
/// The decisions of `c` for the rows of `scores`: solver::policy_at(scores, c.lambda), with the tied rows whose hash is
/// below c.fill on their arm at c.lambda_over. The hash is of the row index, so any file's rows draw alike.
void calibrated_policy(const solver::Scores& scores, const TrialCalibration& c, std::vector<uint8_t>& arm);
/// The share in [0, 1) that decides whether tied row i takes its costlier arm (calibrated_policy).
double tie_hash(int64_t row);

/// The decisions of one scorer at one lambda, judged on trial rows.
struct BudgetDecision {
  double budget = 0, lambda = 0;
  bool reached = true;         // the calibration met the budget (else lambda is as near as it got)
  double predicted_spend = 0;  // what the scorer expects the decisions to spend per user on these rows
  PolicyValue ipw;             // IPW revenue and spend of the decisions
  Estimate spend;              // the IPW spend with its CI
  SpendVerdict verdict = SpendVerdict::kMeets;
};
/// The decisions solver::policy_at(scores, lambda) on the trial rows of `judged` (an IpwPath over the rows the scores
/// cover): predicted spend, IPW revenue and spend with the spend's CI at `level`, and the verdict. (IpwPath::at(lambda)
/// may count one row differently when lambda sits exactly on that row's breakpoint, as a bisection's lambda does.)
BudgetDecision judge_at(const solver::Scores& scores, const IpwPath& judged, double budget, double lambda,
                        double level = 0.95);
/// The same for given decisions `policy` (one arm per row of `scores`), e.g. calibrated_policy's.
BudgetDecision judge_policy(const solver::Scores& scores, const IpwPath& judged, double budget, double lambda,
                            const std::vector<uint8_t>& policy, double level = 0.95);

/// Cost calibration of a scorer on trial rows, one entry per arm: the mean predicted cost of giving everyone arm j
/// (1/N) sum_i c_hat_ij against the observed mean cost of arm j (the mean of c_i over the rows that got j: unbiased in
/// a trial). ratio = predicted / observed (NaN when the observed mean is 0).
struct ArmCostCalibration {
  int arm = 0;
  double predicted = 0, observed = 0, ratio = 0;
};
std::vector<ArmCostCalibration> cost_calibration(const solver::Scores& scores, const RctSample& s);
/// The largest |log ratio| over arms with a positive observed cost, as a factor >= 1 (1 = calibrated; 5 = some arm's
/// predicted cost is 5x or 1/5 of what it is); 1 when no arm costs anything.
double worst_cost_factor(const std::vector<ArmCostCalibration>& c);

}  // namespace dfcl::metrics
