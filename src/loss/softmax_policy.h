// \brief The softmax-policy decision losses (DFCL-PL, DFCL-MER, Bi-DFCL's primal PPL): the shared base class.
//
// Each of them is   L = α · L_PL + Σ_k −(1/N) Σ_i u_i v_ik · softmax((r̂_i − λ_k ĉ_i) / τ)_{t_i}
// with one (λ_k, v_k) pair per decision term: the dual losses (pll, merl) take λ_k from the grid Λ and the net outcome
// v_ik = y^r_i − λ_k y^c_i; ppl takes λ_k = λ*(b_k) of each training budget and v_ik = y^r_i. u_i is the IPW row
// weight w_i / p_{t_i} (or w_i with `weighting: raw`), N the global batch weight. The papers write a sum over rows;
// the mean (1/N) only rescales the decision part, which matters only relative to α (docs/methods.md).
// A derived class supplies the terms of a batch; this class evaluates them (compute() with autograd through
// log_softmax, value_and_grad() in closed form) and adds α · L_PL.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <string>   // for std::string
#include <utility>  // for std::move
#include <vector>   // for std::vector

#include "loss/decision.h"  // for DecisionSettings, PredictionTerm
#include "loss/loss.h"      // for Loss, LossContext
#include "model/batch.h"    // for Batch
#include "model/scores.h"   // for Scores

namespace dfcl {
class Config;
}

namespace dfcl::loss {

class SoftmaxPolicyLoss : public Loss {
 public:
  at::Tensor compute(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const override;
  /// Closed form: with a = (r̂_i − λ ĉ_i)/τ, p = softmax(a) and g_i = u_i v_i / N, row i adds −g_i p_t to the value
  /// and dL/da_j = −g_i p_t (δ_jt − p_j); then dL/dr̂ = dL/da / τ and dL/dĉ = −λ dL/da / τ. Plus α · L_PL's gradient.
  bool value_and_grad(const model::Batch& b, const model::Scores& s, const LossContext& ctx, at::Tensor& value,
                      at::Tensor& d_r, at::Tensor& d_c) const override;

 protected:
  /// One decision term: its λ and the per-row gains g_i = u_i v_i / N (B values, scores' dtype and device, no graph;
  /// 0 for padding rows and for a batch of total weight 0).
  struct Term {
    double lambda;
    at::Tensor gain;
  };
  SoftmaxPolicyLoss(DecisionSettings settings, double tau) : settings_(std::move(settings)), tau_(tau) {}
  /// This batch's terms; scores are checked against the batch before the call.
  virtual std::vector<Term> terms(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const = 0;
  /// The dual terms of pll and merl: one per λ in the grid Λ, v_i = y^r_i − λ y^c_i.
  std::vector<Term> dual_terms(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const;
  /// u_i / N per row (u: row_weights with the settings' ipw flag; 0 everywhere when N = 0), no graph.
  at::Tensor scaled_row_weights(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const;
  /// Reads `tau` (> 0, finite) from the loss section; throws ConfigError naming loss.tau.
  static double read_tau(const Config& section, double fallback);

  DecisionSettings settings_;
  double tau_;
};

}  // namespace dfcl::loss
