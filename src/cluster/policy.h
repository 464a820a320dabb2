// \brief A cluster policy as dfcl keeps it (one `.policy` file): the representation net that defines the clusters,
// the centroids, the group scores (per cluster and arm: trial mean revenue and cost, after the empty-cell fallback and
// the robust shift), the distilled classifier, and the group programme's table over a budget grid.
//
// As a scorer (dfcl evaluate, dfcl allocate) a policy maps each user to a cluster (the distilled classifier, or the
// teacher's nearest centroid) and gives them that cluster's scores: r_hat_ij = revenue[k(i)][j], c_hat_ij = cost[k(i)][j].
// The evaluator's lambda for a budget then picks, for whole clusters at a time, argmax_j r - lambda c: the Lagrangian
// solution of the group programme on the scored population, so cluster policies sit in the same tables and cost curves
// as per-user models.
//
// File: the checkpoint container (train/checkpoint.h) holding the representation checkpoint's config, state and
// "model.*" / "input.*" tensors (so load_trained_model reads the teacher from it), plus state["cluster"] and the
// tensors "cluster.*" and "student.*".
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor
#include <nlohmann/json.hpp>   // for nlohmann::json

#include <cstdint>  // for int64_t, int32_t
#include <memory>   // for std::shared_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "cluster/distill.h"         // for Student
#include "cluster/group_stats.h"     // for GroupScores
#include "cluster/representation.h"  // for RepLayers, RepScaler
#include "metrics/score_table.h"     // for ScoreTable
#include "train/trained_model.h"     // for TrainedModel

namespace dfcl::data {
struct Meta;
struct Table;
}  // namespace dfcl::data

namespace dfcl::cluster {

/// How a policy assigns users to clusters when it scores them.
enum class Serve {
  kStudent,  // the distilled classifier (one small forward pass)
  kTeacher,  // the representation net and the nearest centroid
};
Serve parse_serve(const std::string& name, const std::string& key);

struct ClusterPolicy {
  std::shared_ptr<const train::TrainedModel> teacher;  // the representation net, its input scaler, feature/arm names
  RepLayers layers = RepLayers::kConcat;
  RepScaler rep_scaler;
  at::Tensor centroids;  // k x d, float64
  GroupScores scores;    // k x m per-user revenue and cost
  std::vector<double> trial_rows;  // k x m: trial rows per cell
  Student student;       // empty when not distilled
  Serve serve = Serve::kStudent;
  nlohmann::json table;  // the group programme over the budget grid, and the fit's report (what dfcl cluster printed)
  std::string origin;    // the file it came from (messages)

  int k() const { return scores.k; }
  int arms() const { return scores.m; }
  /// Cluster of each row: the distilled classifier (serve = student, when present) or the nearest centroid.
  std::vector<int32_t> assign(const data::Table& rows) const;
  std::vector<int32_t> assign_teacher(const data::Table& rows) const;
  /// The per-user scores of `rows` (N x M): their clusters' revenue and cost.
  metrics::ScoreTable score(const data::Table& rows) const;
  /// DataError unless `meta` has the features (names, order) and arms the policy was fitted on, naming `where`, the
  /// first difference and the fix.
  void check_compatible(const data::Meta& meta, const std::string& where) const;

  /// Writes the policy (atomically) next to the representation checkpoint `rep_checkpoint` it was built from.
  void save(const std::string& path, const std::string& rep_checkpoint) const;
  /// Reads a policy file; DataError naming the path when it is not one (a training checkpoint, say) or is damaged.
  static ClusterPolicy load(const std::string& path);
};

/// Per-user scores (N x M) of users in clusters `label`: each row is its cluster's revenue and cost.
metrics::ScoreTable cluster_scores(const std::vector<int32_t>& label, const GroupScores& g);

/// True for paths ending in ".policy" (what dfcl cluster writes).
bool is_policy_file(const std::string& path);

}  // namespace dfcl::cluster
