// \brief The decision layer: scores -> lambda for a budget -> one arm per user -> what those decisions spend and earn on
// trial rows, by IPW and by the chosen estimator (DR by default), with CIs. dfcl evaluate, dfcl allocate, validation
// during training, dfcl tune (through validation) and dfcl cluster's K sweep all decide through this one path.
//
//   decided rows:     the users who get decisions (dfcl allocate: every user; evaluate and validation: the judged rows)
//   calibration rows: trial rows lambda is set on (budget_calibration: trial): lambda is where the estimated spend of
//                     the scorer's dual policy on them meets the budget (the EOM bisection, a tie split as the LP would);
//                     budget_calibration: predicted takes lambda from the scorer's own costs on the decided rows
//   judged rows:      trial rows the decisions are valued on (never the rows a model trained on: decide/heldout.h)
#pragma once
#include <cstdint>  // for int64_t, uint8_t
#include <memory>   // for std::unique_ptr
#include <vector>   // for std::vector

#include "metrics/estimate.h"         // for EstimatorKind
#include "metrics/estimator_path.h"   // for EstimatorPath
#include "metrics/ipw_path.h"         // for IpwPath
#include "metrics/policy_estimate.h"  // for PolicyEstimator, PolicyEstimate
#include "metrics/rct_sample.h"       // for RctSample
#include "metrics/spend.h"            // for BudgetCalibration, BudgetDecision, TrialCalibration
#include "solver/mckp.h"              // for Allocation, SolveOptions, DualPath
#include "solver/scores.h"            // for Scores

namespace dfcl::decide {

/// Trial rows with one scorer's scores on them, and the paths and estimators that value its policies there.
class TrialView {
 public:
  /// `outcome`: the outcome model's predictions on these rows (needed when `kind` is dr or sndr). The scores, the
  /// sample's arrays and the outcome table must outlive the view.
  TrialView(const solver::Scores& scores, const metrics::RctSample& sample, metrics::EstimatorKind kind,
            const solver::Scores* outcome = nullptr, int threads = 0);
  ~TrialView();
  TrialView(TrialView&&) noexcept;

  const solver::Scores& scores() const { return scores_; }
  const metrics::RctSample& sample() const { return s_; }
  metrics::EstimatorKind kind() const { return kind_; }
  /// The IPW path (always), the chosen estimator's path, and its fixed-policy estimator.
  const metrics::IpwPath& ipw() const { return *ipw_; }
  const metrics::EstimatorPath& path() const { return *path_; }
  const metrics::PolicyEstimator& estimator() const { return *est_; }
  const metrics::PolicyEstimator& ipw_estimator() const { return *ipw_est_; }

 private:
  solver::Scores scores_;
  metrics::RctSample s_;
  metrics::EstimatorKind kind_;
  std::unique_ptr<metrics::IpwPath> own_ipw_;
  std::unique_ptr<metrics::EstimatorPath> path_;
  const metrics::IpwPath* ipw_ = nullptr;
  std::unique_ptr<metrics::PolicyEstimator> est_, ipw_est_;
};

struct DecisionOptions {
  metrics::BudgetCalibration calibration = metrics::BudgetCalibration::kTrial;
  /// Under trial calibration: lambda where this estimate of the spend on the calibration rows meets the budget. ipw is
  /// the papers' protocol; the calibration view's own estimator (dr) has the lower variance.
  bool calibrate_by_estimator = false;
  double level = 0.95;  // CIs of the spend and revenue
  /// Predicted calibration (dfcl allocate): the knapsack on the decided rows' predicted costs.
  solver::SolveOptions solve;
  bool bisection = false;  // allocate.method: bisection instead of the exact dual path
  int threads = 0;
};

/// The decisions at one budget and what they spend and earn.
struct Decision {
  double budget = 0;  // per capita
  double lambda = 0;
  bool reached = true;  // the calibration met the budget (else lambda is as near as it got)
  metrics::TrialCalibration tc;  // trial calibration: the bisection (tc.point) and the tie split
  /// The decisions for the decided rows (arm per row) and what the scorer predicts they spend and earn (sums).
  solver::Allocation alloc;
  // On the judged rows (when there are):
  bool judged = false;
  std::vector<uint8_t> judged_arms;  // the same decision rule applied to the judged rows
  metrics::BudgetDecision ipw;       // predicted spend, IPW revenue and spend with CI, verdict
  metrics::PolicyEstimate estimate;  // revenue and spend by the judged view's estimator, with CIs
  metrics::SpendVerdict verdict = metrics::SpendVerdict::kMeets;  // of `estimate`'s spend against the budget
};

/// Decides for one scorer at any number of budgets (per capita). `calibration` and `judged` may be null (no trial rows:
/// predicted calibration only, nothing judged) and may be the same view; `decided` may be the judged view's scores, in
/// which case the decisions are judged without being recomputed. All must outlive the decider.
class Decider {
 public:
  Decider(const solver::Scores& decided, const TrialView* calibration, const TrialView* judged,
          const DecisionOptions& options);
  ~Decider();
  /// The decisions at a per-capita budget.
  Decision at(double budget) const;
  /// The same for a total budget (predicted calibration solves the knapsack at this total exactly).
  Decision at_total(double total) const;
  /// The exact dual path of predicted calibration, once a budget has used it (its spend range); nullptr otherwise.
  const solver::DualPath* dual_path() const { return dual_.get(); }

 private:
  Decision decide(double per_capita, double total) const;
  solver::Scores decided_;
  const TrialView* cal_;
  const TrialView* judged_;
  DecisionOptions o_;
  mutable std::unique_ptr<solver::DualPath> dual_;  // built on the first predicted-calibration budget
};

/// The decision rule of a trial calibration applied to any rows' scores (metrics::calibrated_policy).
void decisions_at(const solver::Scores& scores, const Decision& d, std::vector<uint8_t>& arm);

/// How precisely an estimated spend holds a budget: the CI's half-width as a share of the budget, and the trial rows
/// that would bring it to `target` (the variance falls as 1/n).
struct SpendPrecision {
  double half_width = 0;  // (hi - lo) / 2 / budget
  int64_t rows_for_target = 0;
  double target = 0.02;
};
SpendPrecision spend_precision(const metrics::Estimate& spend, double budget, int64_t rows, double target = 0.02);

}  // namespace dfcl::decide
