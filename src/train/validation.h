// \brief Validation during training: the held-out RCT rows in memory, and the decision metrics of a model on them
// (EOM at the budgets, AUCC for two arms, oracle regret on synthetic data, the training loss).
//
// Every rank holds the same validation rows (bounded by validation.max_rows) and computes the same numbers, so
// best-checkpoint and early-stopping decisions agree on every rank without a collective.
#pragma once
#include <nlohmann/json.hpp>  // for nlohmann::json

#include <cstdint>  // for int64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "data/loader.h"          // for SplitSpec, Split
#include "data/schema.h"          // for Table, Meta
#include "loss/loss.h"            // for Loss, LossContext
#include "metrics/eom.h"          // for EomPoint
#include "metrics/oracle.h"       // for Oracle
#include "metrics/policy_estimate.h"  // for PolicyEstimate
#include "metrics/score_table.h"  // for ScoreTable
#include "metrics/spend.h"        // for BudgetDecision, ArmCostCalibration
#include "model/input_scaler.h"   // for InputScaler
#include "model/uplift_net.h"     // for UpliftNet
#include "train/train_config.h"   // for ValidationConfig

namespace dfcl::data {
class RowSource;
}

namespace dfcl::train {

struct ValidationResult {
  double loss = 0;                       // the training loss over all validation rows (one batch)
  std::vector<metrics::EomPoint> eom;    // per budget: IPW revenue and spend of the model's dual policy
  double eom_mean = 0;                   // mean EOM over the budgets
  std::vector<metrics::BudgetDecision> decisions;  // per budget: lambda, predicted and IPW spend (with CI), verdict
  bool meets_budgets = true;             // no budget's IPW spend lies above it beyond its CI
  double overspend = 0;                  // the largest (spend CI low end - budget) / budget over the budgets, >= 0
  std::vector<metrics::ArmCostCalibration> cost_calibration;  // predicted vs observed mean cost per arm
  double cost_factor = 1;                // the worst arm's predicted/observed ratio as a factor >= 1
  double aucc = std::numeric_limits<double>::quiet_NaN();  // two arms only
  std::vector<double> true_revenue, regret, relative_regret;  // per budget; synthetic data only
  double regret_mean = std::numeric_limits<double>::quiet_NaN();
  // The doubly robust estimate (validation.estimator; empty without an outcome model): per budget, lambda set by the
  // DR spend and the DR revenue and spend of those decisions, with CIs.
  struct DrBudget {
    double budget = 0, lambda = 0;
    bool reached = true;
    metrics::PolicyEstimate estimate;
    metrics::SpendVerdict verdict = metrics::SpendVerdict::kMeets;
  };
  std::vector<DrBudget> dr;
  double dr_eom_mean = std::numeric_limits<double>::quiet_NaN();  // mean DR revenue over the budgets
  bool dr_meets_budgets = true;
  double dr_overspend = 0;
  std::string dr_estimator;  // its description
  double seconds = 0;
  /// The value of `metric` (validation.metric).
  double select(SelectMetric metric) const;
  nlohmann::json to_json() const;
};

/// The best validation so far (what best.ckpt holds) and the rule that replaces it.
struct BestSoFar {
  int64_t epoch = -1;     // 1-based; -1 = none yet
  double value = 0;       // its validation.metric
  bool meets = true;      // its decisions meet every validation budget (IPW or, for dr_eom, DR spend)
  double overspend = 0;   // ... or by how much they overspend
  /// True when `v`, whose validation.metric value is `x`, replaces the best: it must beat it by more than min_delta
  /// in the metric's direction. With metric eom, EOM compares revenue at equal spend, so an epoch whose decisions
  /// overspend never replaces one whose decisions do not, one that does not always replaces one that does, and among
  /// overspending epochs the one that overspends less wins.
  bool improved_by(const ValidationResult& v, double x, const ValidationConfig& vc) const;
  void take(const ValidationResult& v, double x, int64_t at_epoch, SelectMetric metric = SelectMetric::kEom);
};

class ValidationSet {
 public:
  /// Reads the RCT rows of `which` split from `source` (the first `cfg.max_rows` in row order). Throws DataError
  /// when there are none. Budgets default to 0.25/0.5/0.75 of the costliest arm's mean cost on these rows.
  /// `files`: the files `source` reads (for the held-out check of a checkpoint outcome model; empty in memory).
  ValidationSet(data::RowSource& source, const data::SplitSpec& split, data::Split which,
                const ValidationConfig& cfg, int threads, const std::vector<std::string>& files = {});
  ~ValidationSet();

  const data::Table& rows() const { return rows_; }
  const std::vector<double>& budgets() const { return budgets_; }
  bool has_truth() const { return oracle_ != nullptr; }
  /// Regret of random targeting at each budget (for scale; computed once).
  const std::vector<double>& random_regret() const { return random_regret_; }

  /// d_k = mean cost of arm k minus arm k-1 on these rows (what factor models' tables use); empty when an arm has no
  /// rows or the arms are not ordered by cost (then factor models cannot be validated: DataError from evaluate).
  const std::vector<double>& step_costs() const { return step_costs_; }

  /// Scores the rows with the net under `flat` (through the loss's decision factors for factor models).
  ValidationResult evaluate(const model::UpliftNet& net, const at::Tensor& flat, const model::InputScaler& scaler,
                            const loss::Loss& loss, const loss::LossContext& ctx) const;
  /// The decision metrics of given scores for these rows (N x M, in row order); loss is NaN. What evaluate() reports
  /// after it predicts, and how other scorers (cluster policies, dfcl cluster's K sweep) are judged on the same rows.
  ValidationResult evaluate_scores(const metrics::ScoreTable& scores) const;

 private:
  data::Table rows_;
  int m_ = 0, threads_ = 0, quantiles_ = 200;
  metrics::BudgetCalibration calibration_ = metrics::BudgetCalibration::kTrial;
  std::vector<double> budgets_, random_regret_, step_costs_;
  std::string step_cost_error_;
  std::unique_ptr<metrics::Oracle> oracle_;
  metrics::ScoreTable outcome_;  // the DR outcome model's predictions for rows_ (empty: no DR)
  metrics::EstimatorKind dr_kind_ = metrics::EstimatorKind::kDr;
  std::string dr_description_;
};

}  // namespace dfcl::train
