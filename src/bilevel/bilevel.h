// \brief Bi-DFCL (NeurIPS 2025; spec methods-bidfcl.md): bi-level decision-focused training on a small randomised
// trial and a large observational log. The deployed target net θ learns the lower level on the log (factual labels +
// bridge-gated pseudo-labels); the bridge net φ is tuned so that θ's decisions on the trial get better, through the
// implicit hypergradient (k assumed steps, conjugate gradient on Hessian-vector products, the mixed term).
//
// Use: `dfcl train -c configs/bidfcl.yaml`. The `loss` section is the upper (decision) loss — any registered loss,
// ppl or pifd in the paper — and `bilevel` holds the rest (docs/training.md lists every key; docs/methods.md the
// method and each choice where the paper is silent). The trainer (train/trainer.h) keeps data order, validation,
// checkpoints and resume; this folder supplies the step (train/step_method.h).
//
//   cg.h            conjugate gradient with damping, negative-curvature and divergence stops, warm start
//   lower_level.h   the masked MSE on the log, its score gradient, the gates' cotangent of the mixed term
//   second_order.h  exact and Gauss–Newton HVPs, the target's JVP, the mixed term (closed form, double backward)
//   method.cpp      the bi-level step across ranks, the teacher, checkpoints, statistics
#pragma once
#include <cstdint>  // for int64_t
#include <string>   // for std::string

#include "bilevel/cg.h"           // for CgOptions
#include "bilevel/lower_level.h"  // for LowerMode
#include "train/optimizer.h"      // for OptimizerConfig
#include "train/step_method.h"    // for StepMethodFactory

namespace dfcl {
class Config;
}
namespace dfcl::data {
class RowSource;
}
namespace dfcl::train {
struct TrainConfig;
}

namespace dfcl::bilevel {

enum class Hvp { kExact, kGaussNewton };
enum class Hypergradient { kImplicit, kExplicit };
enum class MixedTerm { kClosedForm, kAutograd };

/// The `bilevel` section (docs/training.md).
struct BilevelConfig {
  std::string teacher;          // checkpoint of a TSM-SL teacher; "" = train one on the trial first (teacher_epochs)
  int teacher_epochs = 0;       // 0 = auto: train.epochs = auto's rule on the trial's rows (batch size auto too)
  LowerMode labels = LowerMode::kCounterfactual;
  Hypergradient hypergradient = Hypergradient::kImplicit;  // explicit: the "w/o ID" baseline (one step, every batch)
  int k = 5;                    // assumed steps per upper step, and the upper step's period in batches
  double inner_lr = 0;          // step of the assumed SGD updates; 0 = 10 x optimizer.lr
  int warm_start_epochs = 1;    // epochs of lower level only (bridge frozen at its initialisation)
  CgOptions cg;                 // iterations (n_cg), tol, damping
  bool relative_damping = true; // δ = cg.damping x the curvature along ∇L_up (cg.h), else cg.damping as is
  bool cg_warm_start = true;    // start CG from the previous upper step's v
  Hvp hvp = Hvp::kExact;
  MixedTerm mixed = MixedTerm::kClosedForm;
  bool upper_float64 = true;    // upper_dtype: float64 (CG, HVPs and the mixed term in float64) | same (the run's)
  int blas_threads = 1;         // threads of LibTorch's BLAS during the run (0 = leave it); see docs/benchmarks.md
  int64_t rct_batch = 16384;    // trial rows per upper step (drawn with replacement); 0 = all rows held
  int64_t rct_max_rows = 200000;  // trial training rows held in memory
  train::OptimizerConfig bridge;  // bilevel.bridge_optimizer (adam, lr 1e-3)
  /// Reads and validates the section; ConfigError naming bilevel.<key> and the fix. `theta_lr` is optimizer.lr.
  static BilevelConfig from(const Config& section, double theta_lr);
};

/// The data Bi-DFCL needs, checked before the trainer opens its loader: train.source = observational, log rows and
/// trial rows (ConfigError / DataError naming the data and the fix). The method checks it again itself.
void check_inputs(data::RowSource& source, const train::TrainConfig& tc);

/// The trainer's step for Bi-DFCL (cmd_train passes it when the config has a `bilevel` section).
train::StepMethodFactory bilevel_method();

}  // namespace dfcl::bilevel
