// \brief Loss interface, the registry of named losses, and the factory that builds one from the `loss` section.
//
// Adding a loss = one file: a class deriving from Loss, then `DFCL_REGISTER_LOSS(Class, "name")` in its .cpp,
// and one line `X(Class)` in DFCL_BUILTIN_LOSSES below. The explicit list (rather than static registrars)
// keeps registration working when dfcl_loss is a static library: the linker keeps every loss the list names.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <functional>  // for std::function
#include <memory>      // for std::unique_ptr
#include <string>      // for std::string
#include <vector>      // for std::vector

#include "model/batch.h"   // for Batch
#include "model/scores.h"  // for Scores

namespace dfcl {
class Config;
}

namespace dfcl::loss {

/// What a loss may need beyond the batch. Everything is optional; empty means "from this batch".
/// For multi-rank training the trainer fills arm_rows / total_weight with the global batch's values (one
/// all-reduce); each rank's loss is then its share, and the sum over ranks is the global-batch loss.
struct LossContext {
  /// RCT arm propensities p_j (size M, each > 0): per-arm normalisers become N_j = p_j * total weight, the
  /// inverse-propensity form of L_PL. Empty: N_j is the arm's (weighted) row count in the batch.
  std::vector<double> arm_propensity;
  /// Per-arm weighted row counts N_j to normalise by (size M), e.g. summed over ranks. Empty: from the batch.
  std::vector<double> arm_rows;
  /// Total weight N to normalise by (e.g. summed over ranks); 0: the batch's weight sum.
  double total_weight = 0;
  /// Sums (or maximises) values across ranks in place; the trainer wires them to its Communicator. Empty: one
  /// process. Losses that need global quantities inside a step (the primal λ* bisection) reduce through these.
  std::function<void(std::vector<double>&)> reduce_sum, reduce_max;
  /// λ* per training budget found by the trainer on an RCT sample at the start of the epoch (losses whose
  /// lambda_budgets() is non-empty and lambda_source() is "sample"); empty otherwise.
  std::vector<double> sample_lambda;
};

class Loss {
 public:
  virtual ~Loss() = default;
  /// The scalar loss of one batch; differentiable in `scores` (to any order). Rows with weight 0 contribute
  /// nothing. Throws DataError when batch and scores disagree in shape.
  virtual at::Tensor compute(const model::Batch& batch, const model::Scores& scores, const LossContext& ctx) const = 0;
  /// The fused path: the loss value (0-dim tensor, no graph) and its gradient with respect to the scores, d_r and
  /// d_c (B x M, resized and overwritten), computed directly without autograd. Returns false when the loss has no
  /// closed-form score gradient; the trainer then uses compute() and autograd. Must agree with compute().
  virtual bool value_and_grad(const model::Batch& batch, const model::Scores& scores, const LossContext& ctx,
                              at::Tensor& value, at::Tensor& d_r, at::Tensor& d_c) const {
    (void)batch, (void)scores, (void)ctx, (void)value, (void)d_r, (void)d_c;
    return false;
  }
  /// Factor models (DHCL, DRP) learn decision factors instead of outcome tables: θ (B x (M-1), no graph), step k's
  /// factor for arm k-1 -> k, from the net's raw r_hat. Undefined for outcome models (the default). Where a factor
  /// model's scores are needed (validation, evaluate, allocate), metrics::factor_scores turns θ into tables.
  virtual at::Tensor decision_factors(const at::Tensor& r_hat) const {
    (void)r_hat;
    return {};
  }
  /// True for factor models (decision_factors() is defined): their r_hat columns are raw scores, so `auto` output
  /// heads resolve to the identity and the output heads are not checked against revenue labels.
  virtual bool learns_factors() const { return false; }
  /// Per-capita training budgets whose primal λ* the loss needs, and where λ* comes from: "batch" (the loss finds it
  /// on each batch) or "sample" (the trainer finds it on an RCT sample each epoch and passes it in sample_lambda).
  virtual std::vector<double> lambda_budgets() const { return {}; }
  virtual std::string lambda_source() const { return "batch"; }
  /// The registry name ("tsm_sl").
  virtual std::string name() const = 0;
};

using LossFactory = std::function<std::unique_ptr<Loss>(const Config& section)>;

/// Adds a loss under `name` (throws ConfigError on a duplicate name).
void register_loss(const std::string& name, LossFactory factory);
/// Registered names, sorted (the built-ins are always included).
std::vector<std::string> loss_names();
/// Builds the loss named by the section's `name` key; the class reads its own keys from the same section.
/// Throws ConfigError for an unknown name, listing the known ones.
std::unique_ptr<Loss> make_loss(const Config& section);

}  // namespace dfcl::loss

namespace dfcl::loss::detail {
/// Registry insert without the built-in bootstrap (used by the registrars themselves).
void add_loss(const std::string& name, LossFactory factory);
}  // namespace dfcl::loss::detail

/// Defines `register_<Class>()`, the registrar of `Class` under "name"; use once, at global scope, in the loss's
/// .cpp. `Class` lives in dfcl::loss and is constructible from `const dfcl::Config&` (the loss section).
#define DFCL_REGISTER_LOSS(Class, loss_name)                                                 \
  namespace dfcl::loss {                                                                     \
  void register_##Class() {                                                                  \
    detail::add_loss(loss_name, [](const ::dfcl::Config& section) -> std::unique_ptr<Loss> { \
      return std::make_unique<Class>(section);                                               \
    });                                                                                      \
  }                                                                                          \
  }

/// The built-in losses, one X(Class) each; loss.cpp calls their registrars on first use of the registry.
#define DFCL_BUILTIN_LOSSES(X) \
  X(TsmSl)                     \
  X(FactualLoss)               \
  X(Pll) X(Merl) X(Ppl)         \
  X(Dhcl) X(Drp)                \
  X(Ifd) X(IfdSoftmax) X(Pifd)
