// \brief The training engine: one loop for every loss. Streams shuffled batches, takes gradient steps (the loss's
// fused score gradient + the net's hand-written backward when both exist, autograd otherwise), reduces everything
// global through the Communicator, validates each epoch, keeps the best and the last checkpoint, stops early, resumes.
//
// Resume semantics: a checkpoint holds the parameters, the optimiser state, the input scaler, the epoch, the number
// of global batches of that epoch already consumed (the sampler cursor) and the global step. All randomness in
// training is counter-based (init from train.seed; shuffling from (train.seed, epoch)), so the cursor is the whole
// RNG state: resuming replays the epoch's batch order and skips the consumed batches, and on one thread the final
// parameters equal the uninterrupted run's bit for bit.
#pragma once
#include <nlohmann/json.hpp>  // for nlohmann::json

#include <cstdint>  // for int64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "core/config.h"         // for Config
#include "train/step_method.h"   // for StepMethodFactory
#include "train/train_config.h"  // for TrainConfig
#include "train/validation.h"    // for ValidationResult

namespace dfcl::data {
class RowSource;
}
namespace dfcl::dist {
class Communicator;
}
namespace dfcl::model {
class UpliftNet;
}

namespace dfcl::train {

struct TrainResult {
  int64_t steps = 0;           // global optimiser steps at the end
  int64_t epochs_done = 0;     // completed epochs
  int64_t samples = 0;         // global rows consumed by this invocation
  double seconds = 0;          // wall time of this invocation's training loop (validation included)
  double samples_per_s = 0;    // samples / time spent in training steps
  bool early_stopped = false;  // validation.patience ran out
  bool partial = false;        // stopped at train.max_steps before the last epoch
  bool fused = false;          // the fused gradient path was used
  int logical_shards = 1;      // L of the global batch sequence (data/sharded_loader.h)
  int64_t best_epoch = -1;     // epoch (1-based) of the best validation, -1 = none yet
  double best_value = 0;       // its validation.metric value
  ValidationResult best;       // its full validation numbers
  std::vector<double> budgets, random_regret;  // validation budgets; random targeting's regret there (synthetic)
  nlohmann::json history;      // one record per validated or completed epoch (as in metrics.jsonl)
  nlohmann::json derived;      // what the `auto` settings (batch size, epochs, warm-up) resolved to for this data
  std::string output, last_checkpoint, best_checkpoint, model_file, metrics_file, curve_plot;
};

class Trainer {
 public:
  /// `cfg` holds the train, validation, model, loss, optimizer and schedule sections (each validated here: a bad
  /// value throws ConfigError naming its key). `source` and `comm` must outlive the trainer.
  /// `method`, when given, builds the step of a method the trainer does not know (train/step_method.h: Bi-DFCL).
  Trainer(const Config& cfg, data::RowSource& source, dist::Communicator& comm, int threads,
          const StepMethodFactory& method = {});
  ~Trainer();
  /// Trains (continuing from train.resume when set) and returns the summary. Throws DataError when the loss
  /// stops being finite, naming the epoch and step.
  TrainResult run();
  const model::UpliftNet& net() const;
  const TrainConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The per-epoch summary table of a run (what `dfcl train` prints at the end).
std::string summary_table(const TrainResult& r, const std::string& metric_name);

}  // namespace dfcl::train
