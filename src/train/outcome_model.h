// \brief The estimator settings of a command (its `estimator` section) and the outcome model the doubly robust
// estimators correct with: cross-fitted on the judged rows (ridge or TSM-SL), or a model trained on other rows.
//
// The outcome model must not have seen the outcomes of the rows it corrects: a model that fit them predicts their
// noise, and DR then subtracts that noise from itself. `crossfit` fits K models, each predicting the rows of the fold
// it left out (decide/crossfit.h). A checkpoint is accepted when the rows are held out from it (decide/heldout.h: a
// file it never trained on, or the validation or test split of one it did) and refused otherwise; a scores file
// cannot say what it was fit on and is taken on trust, with a warning.
#pragma once
#include <cstdint>  // for int64_t, uint64_t
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "data/schema.h"          // for Meta, Table
#include "data/split.h"           // for Split
#include "metrics/estimate.h"     // for EstimatorKind
#include "metrics/score_table.h"  // for ScoreTable

namespace dfcl {
class Config;
}

namespace dfcl::train {

struct EstimatorSettings {
  metrics::EstimatorKind kind = metrics::EstimatorKind::kDr;
  std::string outcome_model = "crossfit";  // crossfit | a checkpoint (.ckpt) | a scores file (.h5)
  std::string learner = "ridge";           // the cross-fitted learner: ridge | tsm_sl
  int folds = 5;
  double ridge = 1.0;      // the ridge learner's penalty on standardised coefficients
  int tsm_sl_epochs = 0;   // the TSM-SL learner's epochs (0: derived from the rows, as dfcl train's auto)
  uint64_t seed = 0;       // folds and the TSM-SL learner's initialisation
  bool calibrate = false;  // budget_calibration: trial sets lambda by this estimator's spend (else by IPW's)
  std::string key;         // the section's name in messages ("evaluate.estimator")

  /// Reads `<key>.kind`, `.outcome_model`, `.learner`, `.folds`, `.ridge`, `.tsm_sl_epochs`, `.seed`, `.calibrate`
  /// from `cfg`. ConfigError naming the key and the fix.
  static EstimatorSettings from(const Config& cfg, const std::string& key, metrics::EstimatorKind default_kind,
                                bool default_calibrate = false);
  /// "dr (outcome model: ridge, cross-fitted in 5 folds)", "ipw".
  std::string describe() const;
};

/// Where the judged rows come from, for the held-out check of a checkpoint outcome model.
struct RowsOrigin {
  std::vector<std::string> files;  // empty for an in-memory population
  data::Split split = data::Split::kAll;
  data::SplitSpec spec;
};

/// The outcome model's predictions of every arm for `rows` (N x M), and what made them.
struct OutcomeModel {
  metrics::ScoreTable table;
  std::string description;
  double seconds = 0;
};

/// A TSM-SL net (the trainer's defaults: criteo MLP, L_PL, Adam 3e-3, batch size and epochs auto; `epochs` > 0 fixes
/// them) trained in this process on the trial rows `rows` (its own 85/15 split selects the epoch by validation loss),
/// in a scratch directory that is removed afterwards. `origin` names it in messages. What the TSM-SL learner of
/// cross-fitting fits per fold, and what studies train their models with.
struct TrainedModel;
TrainedModel fit_tsm_sl(data::Table rows, const data::Meta& meta, int epochs, uint64_t seed, int threads,
                        const std::string& origin);

/// Fits (crossfit) or reads (a checkpoint, a scores file) the outcome model of `es` for `rows`. Nothing for the IPW
/// kinds (an empty table). Throws DataError for a fold with an empty arm, a model from another dataset (naming both)
/// or a checkpoint that trained on the rows.
OutcomeModel outcome_model(const EstimatorSettings& es, const data::Table& rows, const data::Meta& meta,
                           const std::string& where, const RowsOrigin& origin, int threads);

}  // namespace dfcl::train
