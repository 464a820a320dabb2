// \brief A trained uplift model as dfcl keeps it (net + input scaler + the data it expects), loaded from a checkpoint,
// and scoring rows with it in blocks.
#pragma once
#include <cstdint>  // for int64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "data/split.h"           // for SplitSpec
#include "metrics/score_table.h"  // for ScoreTable
#include "model/input_scaler.h"   // for InputScaler
#include "model/uplift_net.h"     // for UpliftNet

namespace dfcl::data {
struct Meta;
struct Table;
}  // namespace dfcl::data
namespace dfcl::loss {
class Loss;
}

namespace dfcl::train {

/// How a net's raw outputs become the (r_hat, c_hat) tables the solver and the metrics read: outcome models as they
/// are; factor models (the loss's decision_factors() is defined: DHCL, DRP) through metrics::factor_scores with the
/// RCT step costs d_k.
struct ScoreMap {
  const loss::Loss* loss = nullptr;  // null: outcome model
  std::vector<double> step_costs;    // d_k, k = 1..M-1 (factor models)
};

struct TrainedModel {
  TrainedModel();
  TrainedModel(TrainedModel&&) noexcept;
  ~TrainedModel();
  std::unique_ptr<model::UpliftNet> net;
  std::unique_ptr<loss::Loss> loss;       // the training loss (decides whether outputs are factors)
  std::vector<double> step_costs;         // saved by the trainer
  model::InputScaler scaler;
  std::vector<std::string> feature_names;  // the training data's, checked against scored data
  std::vector<std::string> arm_names;
  std::string origin;  // the checkpoint it came from (messages)
  /// What it was trained on: train.data's files (empty for an in-memory population) and the split of their rows.
  std::vector<std::string> train_files;
  data::SplitSpec split;

  /// Throws DataError unless `meta` has the same features (by name and order) and arms as the training data.
  void check_compatible(const data::Meta& meta, const std::string& where) const;
};

/// Rebuilds the model saved in a checkpoint written by the trainer: architecture from its config's `model` section,
/// parameters from its "model.*" tensors, the scaler from "input.*". `device` is where the net will run.
TrainedModel load_trained_model(const std::string& checkpoint_path, const std::string& device = "cpu");

/// Scores rows [0, rows.rows) of `rows` in blocks of `block` rows: r_hat and c_hat (N x M, float32) under parameters
/// `flat` (the net's own when undefined). No autograd; the net's dtype and device.
/// With a ScoreMap whose loss learns factors, the tables are factor_scores(θ, step_costs).
metrics::ScoreTable predict(const model::UpliftNet& net, const model::InputScaler& scaler, const data::Table& rows,
                            const at::Tensor& flat = {}, const ScoreMap* map = nullptr, int64_t block = 65536);
metrics::ScoreTable predict(const TrainedModel& m, const data::Table& rows);

}  // namespace dfcl::train
