// \brief `dfcl evaluate`'s input: its keys and the trial rows of the evaluated split. (The scorers are decide/scorer.h's,
// the rows to judge and calibrate on decide/heldout.h's.) Bad keys throw ConfigError; bad data DataError naming the
// file.
#pragma once
#include <memory>   // for std::shared_ptr
#include <string>   // for std::string
#include <utility>  // for std::pair
#include <vector>   // for std::vector

#include "core/config.h"          // for Config
#include "data/generator.h"       // for GeneratorConfig
#include "data/schema.h"          // for Meta, Table
#include "data/source.h"          // for RowSource
#include "data/split.h"           // for Split, SplitSpec
#include "metrics/bootstrap.h"    // for BootstrapOptions
#include "metrics/rct_sample.h"   // for RctSample
#include "metrics/score_table.h"  // for ScoreTable
#include "metrics/spend.h"        // for BudgetCalibration
#include "solver/scores.h"        // for Scores
#include "train/outcome_model.h"  // for EstimatorSettings

namespace dfcl::cli {

/// The `evaluate` keys (docs/metrics.md §10).
struct EvaluateSettings {
  std::vector<std::string> data;
  bool generate = false;
  data::GeneratorConfig gen;
  std::vector<std::string> scores;
  std::vector<double> budgets;
  std::string split_name;  // as configured: auto, all, train, validation, test
  data::Split split = data::Split::kTest;
  data::SplitSpec split_spec;
  bool split_spec_given = false;
  std::string calibration_name;  // budget_calibration as configured
  metrics::BudgetCalibration calibration = metrics::BudgetCalibration::kTrial;
  std::string calibration_split_name;  // auto (= evaluated) | evaluated | all | train | validation | test | held_out
  bool design_propensity = false;
  int quantiles = 200;
  metrics::BootstrapOptions boot;
  std::string reference;  // the scorer paired differences and normalised EOM are taken against ("" = the first)
  train::EstimatorSettings estimator;  // evaluate.estimator
  std::string plot;
  int64_t curve_points = 400;
  /// Reads and checks the keys: ConfigError naming the key and the fix.
  static EvaluateSettings from(const Config& cfg, int threads);
};

/// The trial rows of one split (data::read_rct_rows), and where they came from.
struct EvaluatedRows {
  data::Table t;
  data::Meta meta;
  std::string name;
  int64_t n() const { return t.rows; }
  bool has_truth() const { return t.with_truth; }
  solver::Scores truth() const { return {n(), meta.num_arms, t.true_revenue.data(), t.true_cost.data()}; }
};
EvaluatedRows read_rows(data::RowSource& src, const EvaluateSettings& st, data::Split split);
/// The rows' RCT sample: empirical arm shares, or the dataset's design propensities.
metrics::RctSample make_sample(const EvaluatedRows& rows, bool design);

/// 0.1, 0.25, 0.5 and 0.75 of the costliest arm's mean cost on the rows.
std::vector<double> default_budgets(const metrics::RctSample& s);

}  // namespace dfcl::cli
