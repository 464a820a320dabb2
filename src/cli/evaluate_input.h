// \brief `dfcl evaluate`'s input: its keys, the checkpoints it scores with (what they trained on decides the default
// split), the trial rows of the evaluated split, and the scorers (oracle, random, true ROI, a model, a scores file)
// that turn those rows into r_hat / c_hat tables. Bad keys throw ConfigError; bad data DataError naming the file.
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
#include "train/trained_model.h"  // for TrainedModel

namespace dfcl::cluster {
struct ClusterPolicy;
}

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
  std::string calibration_split_name;  // evaluated | all | train | validation | test | held_out
  bool design_propensity = false;
  int quantiles = 200;
  metrics::BootstrapOptions boot;
  std::string reference;
  std::string plot;
  int64_t curve_points = 400;
  /// Reads and checks the keys: ConfigError naming the key and the fix.
  static EvaluateSettings from(const Config& cfg, int threads);
};

/// The checkpoints among the scorers, loaded once before any row is read.
/// Cluster policies (.policy, dfcl cluster) are loaded too: their representation net joins `Models` (it decides the
/// split as a checkpoint's model does), and the policy itself goes to `policies`.
using Models = std::vector<std::pair<std::string, std::shared_ptr<const train::TrainedModel>>>;
using Policies = std::vector<std::pair<std::string, std::shared_ptr<const cluster::ClusterPolicy>>>;
Models load_models(const EvaluateSettings& st, Policies* policies = nullptr);

/// The split to evaluate and its fractions (split: auto, docs/metrics.md §10): a checkpoint's test split, with its
/// fractions, on data it trained on; all rows otherwise. Warns about partial splits of held-out files and fractions
/// that differ from the checkpoint's.
void resolve_split(EvaluateSettings& st, const Models& models);

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

/// One scorer's scores on one set of rows: owned (a table) or a view of the true tables.
struct Scored {
  metrics::ScoreTable table;
  solver::Scores view;
};

/// A scorer: a built-in name, a checkpoint (its model), or a scores file.
struct Scorer {
  std::string name, label;
  std::shared_ptr<const train::TrainedModel> model;
  std::shared_ptr<const cluster::ClusterPolicy> policy;  // a cluster policy: its clusters' scores
  bool from_file = false;  // a model, a policy or a scores file: prediction metrics apply
  Scored score(const EvaluatedRows& rows, const EvaluateSettings& st, int threads) const;
};
Scorer make_scorer(const std::string& name, const Models& models, const EvaluateSettings& st,
                   const Policies& policies = {});

/// 0.1, 0.25, 0.5 and 0.75 of the costliest arm's mean cost on the rows.
std::vector<double> default_budgets(const metrics::RctSample& s);

}  // namespace dfcl::cli
