// \brief Optimisers over one flat parameter vector (SGD with momentum, Adam, AdamW), and the `optimizer` section.
//
// A model keeps its parameters in one contiguous 1-D tensor (model/param_layout.h), so an optimiser step is a few
// fused passes over one buffer, and its state is a few buffers of the same length, saved by name in checkpoints.
// The update rules are torch.optim's (documented per class in optimizer.cpp); tests compare them with
// torch::optim in float64.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <cstdint>  // for int64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "model/param_file.h"  // for NamedTensors

namespace dfcl {
class Config;
}

namespace dfcl::train {

struct OptimizerConfig {
  std::string name = "adam";  // sgd | adam | adamw
  double lr = 1e-3;           // base learning rate (the schedule scales it)
  double weight_decay = 0;    // sgd/adam: L2 added to the gradient; adamw: decoupled
  double momentum = 0;        // sgd
  bool nesterov = false;      // sgd
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adam, adamw
  /// Reads the `optimizer` section (keys: name, lr, weight_decay, momentum, nesterov, betas: [b1, b2], eps) and
  /// validates it: ConfigError naming optimizer.<key> and the fix. A key of another optimiser (betas for sgd,
  /// momentum for adam) is an error too.
  static OptimizerConfig from(const Config& section);
  void validate() const;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  /// One update of `params` (1-D, modified in place under NoGradGuard, so it may require grad) from `grad` (same
  /// shape, dtype and device) at learning rate `lr` (the scheduled rate for this step, finite and >= 0). Allocates
  /// nothing: scratch is made with the optimiser. Throws DataError when the tensors do not match the vector the
  /// optimiser was made for.
  virtual void step(at::Tensor& params, const at::Tensor& grad, double lr) = 0;
  /// Number of step() calls so far (Adam's bias correction uses it).
  int64_t steps() const { return steps_; }
  /// State buffers by name, for checkpoints: "momentum_buffer" (sgd with momentum > 0), "exp_avg" and "exp_avg_sq"
  /// (adam, adamw), each 1-D like the parameters, and "step" as a 0-dim int64. Fresh CPU copies (a snapshot).
  virtual model::NamedTensors state() const = 0;
  /// Restores state() (any device, copied to the optimiser's); continuing then matches an uninterrupted run bit for
  /// bit. Throws DataError naming the buffer when one is missing, unexpected, or has another shape/dtype; nothing
  /// changes then.
  virtual void load_state(const model::NamedTensors& state) = 0;
  virtual std::string name() const = 0;

 protected:
  int64_t steps_ = 0;
};

/// An optimiser for a parameter vector like `params` (its length, dtype and device); validates `config` first.
std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, const at::Tensor& params);

}  // namespace dfcl::train
