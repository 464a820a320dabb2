// \brief The `train` and `validation` sections: what to train on, for how long, and how to judge and keep the model.
// (The model, loss, optimizer and schedule sections are read by their own classes.) docs/training.md lists every key.
#pragma once
#include <cstdint>  // for int64_t, uint64_t
#include <string>   // for std::string
#include <utility>  // for std::pair
#include <vector>   // for std::vector

#include "data/loader.h"    // for SplitSpec, SourceFilter, Remainder
#include "metrics/spend.h"  // for BudgetCalibration
#include "train/outcome_model.h"  // for EstimatorSettings

namespace dfcl {
class Config;
}

namespace dfcl::train {

/// Which validation number picks the best checkpoint and drives early stopping.
enum class SelectMetric { kEom, kDrEom, kRegret, kAucc, kLoss };

struct ValidationConfig {
  /// Held-out files to validate on (their trial rows); empty = the training data's validation split.
  std::vector<std::string> data;
  /// Which rows of the validation data: given (validation.split), or the default: the validation split when the
  /// rows come from a file that is also trained on, all rows of a file the run never trains on (data/split.h).
  data::Split split = data::Split::kValidation;
  bool split_given = false;
  std::vector<double> budgets;  // per-capita budgets for EOM and regret; empty = 0.25/0.5/0.75 of the costliest arm
  /// How lambda is set for each budget (metrics/spend.h): trial (auto; the EOM bisection on the validation rows) or
  /// predicted (the model's own costs). With metric eom, only epochs whose decisions do not overspend are selected.
  metrics::BudgetCalibration calibration = metrics::BudgetCalibration::kTrial;
  SelectMetric metric = SelectMetric::kEom;
  std::string metric_name = "eom";
  /// validation.estimator: the DR estimate computed beside IPW's every validation (metric dr_eom selects on it): its
  /// outcome model is fitted once on the validation rows (cross-fitted) or read from a checkpoint (train/outcome_model.h).
  EstimatorSettings estimator;
  /// validation.keep_best: other metrics whose best epoch is also kept, as best_<metric>.ckpt (one run, several
  /// selections: e.g. [dr_eom, regret] beside metric eom). Training does not depend on them.
  std::vector<std::pair<SelectMetric, std::string>> keep_best;
  int64_t max_rows = 200000;  // validation RCT rows held in memory (the first ones in row order)
  int every = 1;              // validate every `every` epochs (and after the last)
  int patience = 0;           // early stopping: stop after this many validations without improvement (0 = off)
  double min_delta = 0;       // an improvement must exceed this
  int quantiles = 200;        // AUCC (two arms)
  bool higher_is_better() const {
    return metric == SelectMetric::kEom || metric == SelectMetric::kDrEom || metric == SelectMetric::kAucc;
  }
};

struct TrainConfig {
  // data
  std::vector<std::string> data;  // dataset files (one, or several read as one dataset); empty with generate = true
  bool generate = false;  // train on the `generate` section's population, built in memory (no HDF5 needed)
  data::SourceFilter source = data::SourceFilter::kRct;  // rct (the trial) | observational (the log) | all (both)
  std::string source_name = "rct";
  data::SplitSpec split;  // train / validation / test by a hash of the row id
  int64_t batch_size = 4096;
  /// train.batch_size: auto (the default): derived from the training rows n when the trainer knows them: the largest
  /// power of two <= n / 32, within [64, 4096] (at least 32 steps per epoch below 131k rows; 4096 above). Printed and
  /// stored in the checkpoint (state "derived").
  bool batch_size_auto = true;
  int64_t shuffle_buffer = 65536;
  data::Remainder remainder = data::Remainder::kDropLast;
  bool standardize = true;          // fit an InputScaler on the training rows
  int64_t standardize_rows = 1000000;  // rows scanned for it (split across ranks)
  std::string propensity = "batch";    // N_j of the loss: batch (arm counts of the global batch) | design (p_j N)
  int64_t lambda_sample_rows = 100000;  // RCT training rows for λ* of losses with lambda_source = sample
  int logical_shards = 0;  // L: the global batch is L logical shards' batches (0 = the number of ranks at the start;
                           // a resumed run keeps its checkpoint's L). data/sharded_loader.h
  int64_t accumulate = 1;  // batches per optimiser step (gradient accumulation; all-reduce on the last one only)
  // run
  int epochs = 10;
  /// train.epochs: auto (the default): 10, or more when 10 epochs would take fewer than train.min_steps optimiser
  /// steps (at most 200 epochs).
  bool epochs_auto = true;
  int64_t min_steps = 300;
  int64_t max_steps = 0;  // stop (with a checkpoint) after this many global steps: a partial, resumable run
  uint64_t seed = 0;
  std::string dtype = "float32";  // float32 | float64
  std::string device = "cpu";     // cpu | cuda | cuda:N
  std::string fused = "auto";     // auto: the loss's closed-form score gradient when it has one | off: autograd
  // outputs
  std::string output = "run";     // directory: last.ckpt, best.ckpt, model.pt, metrics.jsonl, training_curve.svg
  int64_t checkpoint_steps = 0;   // also checkpoint every this many steps (0 = at epoch ends only)
  std::string resume;             // checkpoint to continue from ("" = a fresh run)
  std::string init_from;          // start a fresh run from this checkpoint's parameters and input scaler (fine-tuning)
  ValidationConfig validation;
  // data parallel (the `dist` section; communicator keys are read by dist::CommOptions)
  bool deterministic = false;  // dist.deterministic: gradients per logical-shard block, summed in block order
  bool debug = false;          // dist.debug: per-step parameter checksums compared across ranks

  /// Reads `train` and `validation`; ConfigError naming the key and the fix.
  static TrainConfig from(const Config& cfg);
};

}  // namespace dfcl::train
