// \brief One scorer judged on trial rows at a grid of budgets (what dfcl evaluate reports per scorer): the decisions
// and what they spend and earn (decide/decision.h), EOM with its bootstrap CI, the cost curve and its area, AUCC for two
// arms, cost calibration, prediction metrics, and on synthetic data the true spend, revenue and oracle regret.
// Then the scorers compared: each one's paired difference against a reference with a paired bootstrap CI, and a ranking
// that says a tie where the CI cannot separate two scorers (docs/metrics.md §10 and §13).
#pragma once
#include <nlohmann/json.hpp>  // for nlohmann::json

#include <string>  // for std::string
#include <vector>  // for std::vector

#include "decide/decision.h"      // for Decider, Decision, TrialView
#include "metrics/bootstrap.h"    // for BootstrapOptions, Interval
#include "metrics/cost_curve.h"   // for CostCurve
#include "metrics/eom.h"          // for EomPoint
#include "metrics/oracle.h"       // for Oracle, Regret
#include "metrics/spend.h"        // for ArmCostCalibration

namespace dfcl::data {
struct Table;
}

namespace dfcl::decide {

struct EvaluationOptions {
  std::vector<double> budgets;  // per capita
  DecisionOptions decision;     // calibration, estimator for lambda, level, threads
  metrics::BootstrapOptions boot;
  int quantiles = 200;
  int64_t curve_points = 400;
  bool prediction_metrics = false;  // a model, policy or scores file: MSE / log loss against the factual outcomes
};

struct ScorerEvaluation {
  std::string name, label;
  std::vector<Decision> at;                // per budget
  std::vector<metrics::EomPoint> eom;      // per budget: the IPW revenue (EOM) and spend at lambda
  std::vector<metrics::Interval> eom_ci;   // its bootstrap CI (empty without bootstrap)
  std::vector<metrics::PolicyValue> true_at;  // synthetic: true revenue and spend of the decisions
  std::vector<metrics::Regret> regret;        // synthetic: oracle regret (the ranking stopped at the true budget)
  std::vector<metrics::ArmCostCalibration> cost_cal;
  metrics::CostCurve curve;     // IPW
  metrics::CostCurve est_curve; // the judged view's estimator (empty points for ipw)
  bool overspends = false;      // at some budget, by the estimator's spend CI
  // Paired comparison (compare()): per budget, the estimated revenue minus the reference's, its CI, and the rank.
  std::vector<metrics::Interval> difference;
  std::vector<int> rank;          // 1, 2, ... (0 = not ranked: overspends); tied ranks share the number
  std::vector<bool> tied;         // the rank is shared: the paired CI cannot separate the scorers
  metrics::Interval mean_difference;  // over the budgets
  int overall_rank = 0;
  bool overall_tied = false;
  /// "1", "2=" (tied), "-" (not ranked).
  static std::string rank_text(int rank, bool tied);
  nlohmann::json j;
};

/// `judged`: the scorer's scores on the judged rows (and those rows' outcomes); `calibration`: where lambda is set
/// (the same view for the papers' protocol: the EOM bootstrap then re-runs the bisection in every replicate).
/// `rows`: the judged rows (truth and factual outcomes). `oracle`: synthetic data only.
ScorerEvaluation evaluate_scorer(const std::string& name, const std::string& label, const TrialView& judged,
                                 const TrialView& calibration, const data::Table& rows, const metrics::Oracle* oracle,
                                 const EvaluationOptions& o);

/// Paired comparisons on the judged rows: for each scorer and budget, the estimated revenue minus that of scorer
/// `reference`, with a paired bootstrap CI (the same resampled rows for both; lambda re-calibrated in each replicate when
/// it was calibrated on the judged rows), then ranks: scorers ordered by estimated revenue, a scorer tied ("=") with the
/// one above it when their paired CI covers 0. Scorers that overspend are not ranked. `views` and `calibrations` are the
/// scorers' TrialViews in the order of `evals`.
void compare(std::vector<ScorerEvaluation>& evals, const std::vector<const TrialView*>& views,
             const std::vector<const TrialView*>& calibrations, size_t reference, const EvaluationOptions& o);

}  // namespace dfcl::decide
