// \brief The trainer's extension point for methods whose step is more than "gradient of the loss on the batch, then
// an optimiser step" (Bi-DFCL's bi-level step: src/bilevel). The Trainer keeps everything else — data order and
// logical shards, the input scaler, validation, the best and last checkpoints, resume, early stopping, metrics.jsonl —
// and hands each global batch to the method instead of its own train_step.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor
#include <nlohmann/json.hpp>   // for nlohmann::json

#include <cstdint>     // for int64_t
#include <functional>  // for std::function
#include <memory>      // for std::unique_ptr
#include <string>      // for std::string

namespace dfcl {
class Config;
}
namespace dfcl::data {
class RowSource;
struct Meta;
struct Table;
}  // namespace dfcl::data
namespace dfcl::dist {
class Communicator;
class Reducer;
}  // namespace dfcl::dist
namespace dfcl::model {
class UpliftNet;
class InputScaler;
}  // namespace dfcl::model
namespace dfcl::loss {
class Loss;
struct LossContext;
}  // namespace dfcl::loss

namespace dfcl::train {

struct Checkpoint;
struct TrainConfig;
class Optimizer;

/// What the trainer lends a method: references that live as long as the trainer. `scaler` is final before the first
/// step (fitted, restored or taken over).
struct StepEnv {
  const Config& cfg;
  const TrainConfig& tc;
  data::RowSource& src;
  const data::Meta& meta;
  dist::Communicator& comm;
  dist::Reducer& reducer;         // the net's bucketed gradient all-reduce (dist/reducer.h)
  model::UpliftNet& net;          // the deployed model; its flat() is what the method updates
  Optimizer& opt;                 // the net's optimiser (optimizer section)
  const model::InputScaler& scaler;
  const loss::Loss& loss;         // the `loss` section: the method's upper (decision) loss
  std::function<loss::LossContext()> context;  // the loss context of the run (propensities, reductions)
  int64_t block_rows = 0;         // rows of one logical shard's part of a global batch
  int threads = 1;
};

class StepMethod {
 public:
  virtual ~StepMethod() = default;
  virtual std::string name() const = 0;
  /// One global batch: `rows` are this rank's rows of it (its logical shards' blocks, back to back). Updates
  /// env.net.flat() through env.opt at rate `lr` and returns this rank's share of the batch's loss (the shares sum
  /// to the global batch loss). `step` counts the optimiser steps taken before this one.
  virtual double step(const data::Table& rows, int64_t step, int64_t epoch, double lr) = 0;
  /// Adds the method's state (tensors "<method>.*", keys under state["<method>"]) to a checkpoint snapshot.
  virtual void save(Checkpoint& ck) const = 0;
  /// Restores it from a checkpoint (`path` names it in messages): DataError when missing or of another shape.
  virtual void restore(const Checkpoint& ck, const std::string& path) = 0;
  /// What the method reports for the epoch just finished (added as the epoch record's "<name()>" key), then reset.
  virtual nlohmann::json take_epoch_stats() = 0;
  /// One line for the epoch's log message (may be empty).
  virtual std::string epoch_summary(const nlohmann::json& stats) const = 0;
};

/// Builds a method once the trainer has its net, optimiser and scaler (cmd_train passes the bi-level one).
using StepMethodFactory = std::function<std::unique_ptr<StepMethod>(const StepEnv& env)>;

}  // namespace dfcl::train
