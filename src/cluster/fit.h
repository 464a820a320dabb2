// \brief Fitting a cluster policy (docs/methods.md, "Cluster allocation"): representations of the trial's training
// rows, K-means for each K of the sweep (the K kept is the best on the validation rows, by validation.metric), group
// scores, the distilled classifier, and the group programme (S2 exactly, S1 as the LP) over a budget grid.
#pragma once
#include <nlohmann/json.hpp>  // for nlohmann::json

#include <cstdint>  // for int64_t
#include <memory>   // for std::shared_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "cluster/distill.h"         // for DistillOptions
#include "cluster/group_stats.h"     // for GroupScoreOptions
#include "cluster/kmeans.h"          // for KMeansOptions
#include "cluster/policy.h"          // for ClusterPolicy, Serve
#include "cluster/representation.h"  // for RepLayers
#include "train/train_config.h"      // for SelectMetric, TrainConfig

namespace dfcl {
class Config;
}
namespace dfcl::data {
class RowSource;
}
namespace dfcl::dist {
class Communicator;
}
namespace dfcl::train {
struct TrainConfig;
struct TrainedModel;
}  // namespace dfcl::train

namespace dfcl::cluster {

/// The `cluster` section (docs/cli.md, dfcl cluster).
struct ClusterConfig {
  std::string representation;          // a checkpoint to take the representation from; empty = train one first
  RepLayers layers = RepLayers::kConcat;
  std::vector<int> k{10, 20, 50, 100, 200};  // the sweep; one value = no sweep
  KMeansOptions kmeans;
  GroupScoreOptions cells;
  std::vector<double> budgets;  // per-user budgets of the programme's grid; empty = budget_points from min to max
  int budget_points = 10;
  int64_t node_limit = 2000000;  // branch and bound nodes per budget
  bool distill = true;
  DistillOptions student;
  Serve serve = Serve::kStudent;
  std::string output;  // the policy file (.policy); empty = <train.output>/cluster.policy
  int64_t max_rows = 0;  // trial training rows read (0 = all)
  /// cluster.metric: the decision metric the K sweep selects on (validation rows): dr_eom (the default: DR revenue at
  /// equal DR spend), eom (IPW), regret (synthetic data) or aucc (two arms). Never the loss: a cluster policy has none.
  train::SelectMetric metric = train::SelectMetric::kDrEom;
  std::string metric_name = "dr_eom";
  /// Reads and checks the section; ConfigError naming cluster.<key>.
  static ClusterConfig from(const Config& section);
};

/// Fits the policy on `src`'s trial rows (the training split of `tc.split` for the fit, its validation split, or
/// validation.data, for the K sweep) with the representation `rep`. Returns the report (also kept in policy.table).
nlohmann::json fit_policy(const ClusterConfig& cc, const train::TrainConfig& tc,
                          std::shared_ptr<const train::TrainedModel> rep, data::RowSource& src,
                          dist::Communicator& comm, int threads, ClusterPolicy& policy);

}  // namespace dfcl::cluster
