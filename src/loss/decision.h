// \brief What the decision-focused losses share: their settings (the λ grid Λ, α, IPW or raw labels, presets), the
// inverse-propensity row weights, the prediction term α·L_PL, and the primal λ* search on a batch.
//
// Every DFCL loss is   L = α · L_PL + L_decision   (spec methods-dfcl-dhcl.md §3.8). The decision part is
// normalised as a mean over the global batch: its value on one rank is that rank's share, and the ranks' values sum to
// the global batch's loss (LossContext::total_weight is the global batch weight N).
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <string>  // for std::string
#include <vector>  // for std::vector

#include "loss/factual_terms.h"  // for FactualTerms
#include "loss/loss.h"           // for LossContext
#include "model/batch.h"         // for Batch
#include "model/scores.h"        // for Scores

namespace dfcl {
class Config;
}

namespace dfcl::loss {

/// Keys of the `loss` section shared by the decision losses (docs/methods.md lists the presets):
///   preset:   paper | reference (the DFCL reference code) | none: base values below, then explicit keys win
///   lambdas:  [λ, ...] > 0, the grid Λ of the dual losses (paper: [0.1, 0.5, 1.0]; reference: [0.1])
///   alpha:    >= 0, the weight of L_PL (reference fine-tuning: 0)
///   weighting: ipw (weight row i by 1/p_{t_i}, the paper) | raw (no weighting, the reference code's PL/MER cells)
/// plus the prediction term's own keys (revenue_loss, cost_loss, revenue_weight, cost_weight; FactualTerms).
struct DecisionSettings {
  std::vector<double> lambdas{0.1, 0.5, 1.0};
  double alpha = 1.0;
  bool ipw = true;
  std::string preset = "paper";
  /// cost_head: calibrated (default) = the decision term moves r_hat only, so c_hat is learned by α·L_PL alone and
  /// stays a calibrated cost prediction (deployment spends by it; an uncalibrated c_hat overspends budgets); decision
  /// = the papers' form, both heads get the decision gradient. docs/methods.md, "Why the cost head stays calibrated".
  bool decision_cost = false;
  FactualTerms prediction;
  /// The c_hat the decision term reads: detached (a constant of the step) under cost_head: calibrated.
  at::Tensor decision_cost_scores(const at::Tensor& c_hat) const { return decision_cost ? c_hat : c_hat.detach(); }
  /// For the fused path: zeroes the decision term's cost gradient under cost_head: calibrated. Call before adding
  /// α·L_PL's gradient.
  void drop_decision_cost_grad(at::Tensor& d_c) const {
    if (!decision_cost) d_c.zero_();
  }
  /// `lambdas_default` / `alpha_default`: the loss's own defaults under the "paper" preset.
  static DecisionSettings from(const Config& section, const std::string& loss_name);
};

/// Per-row weights of the decision terms, w_i / p_{t_i} (ipw) or w_i (raw), in the scores' dtype and device, no graph.
/// p_j: LossContext::arm_propensity (the dataset's RCT propensities) when given, else the global batch's arm shares
/// arm_rows_j / total_weight, else this batch's shares. Padding rows (w_i = 0) get 0. Throws DataError when an arm
/// with rows has p_j = 0.
at::Tensor row_weights(const model::Batch& batch, const model::Scores& scores, const LossContext& ctx, bool ipw);

/// The global batch weight N: LossContext::total_weight when > 0, else the batch's weight sum (host sync).
double batch_total(const model::Batch& batch, const LossContext& ctx);

/// α · L_PL exactly as tsm_sl computes it (the same normalisers), for composition into decision losses.
class PredictionTerm {
 public:
  PredictionTerm() = default;
  explicit PredictionTerm(const FactualTerms& terms) : terms_(terms) {}
  /// Differentiable value (scalar).
  at::Tensor compute(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const;
  /// Adds the value to `value` and the score gradient to d_r, d_c (all defined, shaped like the scores).
  void accumulate(const model::Batch& b, const model::Scores& s, const LossContext& ctx, double alpha,
                  at::Tensor& value, at::Tensor& d_r, at::Tensor& d_c) const;
  /// 1 / (M N_j) per arm, as tsm_sl (0 where N_j = 0).
  static at::Tensor arm_scale(const model::Batch& b, const model::Scores& s, const LossContext& ctx);

 private:
  FactualTerms terms_;
};

/// The primal λ* of a per-capita budget b on RCT rows (spec §2.3, evaluation version): bisection on λ in
/// [0, max r_hat/c_hat] for the dual policy π(λ) = argmax_j r_hat_ij − λ c_hat_ij, with the IPW per-capita cost
/// cbar(λ) = Σ_i u_i y^c_i 1[t_i = π_i(λ)] / Σ_i w_i (u_i = w_i / p_{t_i}) matched to b. The sums are reduced with
/// LossContext::reduce_sum at every iteration, so every rank finds the same λ* for the global batch.
/// k_candidates > 1 makes it a K-section (solver/ksection.h: K candidates per pass, one reduction of 2K sums per pass,
/// as many passes as max_iter halvings need); 1 is plain bisection (the CPU default). `iterations` counts the passes
/// after the λ = 0 probe.
struct LambdaSearch {
  double lambda = 0, cost = 0, revenue = 0;
  int iterations = 0;
  bool matched = false;
};
LambdaSearch primal_lambda(const at::Tensor& r_hat, const at::Tensor& c_hat, const model::Batch& batch,
                           const at::Tensor& ipw, const LossContext& ctx, double budget, int max_iter = 50,
                           double eps_rel = 1e-4, int k_candidates = 1);

/// The `budgets` key of a primal loss (`loss_name` in messages): required, non-empty, each finite and > 0.
std::vector<double> read_primal_budgets(const Config& section, const std::string& loss_name);
/// The `tau` key of the IFD softmax node (default 1): finite and > 0.
double read_node_tau(const Config& section);

/// λ* of each training budget for a primal loss (`loss_name` in messages): LossContext::sample_lambda when `source`
/// is "sample" (checked: one finite value >= 0 per budget, else DataError saying what the trainer must do), else
/// primal_lambda on this batch with the 1/p_t weights.
std::vector<double> primal_lambdas(const std::vector<double>& budgets, const std::string& source,
                                   const std::string& loss_name, const model::Batch& batch,
                                   const model::Scores& scores, const LossContext& ctx);

}  // namespace dfcl::loss
