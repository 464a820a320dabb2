// \brief DFCL-IFD with a softmax node ("IFD-Softmax"; spec methods-dfcl-dhcl.md §3.7.3, last part; Bi-DFCL Algorithm 5
// = DIFD): one perturbation of the score s = r̂ − λ ĉ per entry instead of separate r̂ and ĉ perturbations, and the
// frozen gradient attached to the softmax policy. [RECON]: the spec marks the exact form UNVERIFIED.
//
//   L = α · L_PL − Σ_{λ ∈ Λ} Σ_ij G^s_ij softmax(s_i / τ)_j,   G^s = ΔQ / h detached   (Q = rbar − λ cbar)
//
// h: for a matched row, h_t = −(s_t − max_{j≠t} s_j + eps0) on the observed arm and h_j = s_t − s_j + eps0 on every
// other arm; for a mismatched row, h_t = s_π − s_t + eps0 and h_π = −h_t (ifd_estimator.h). The value is the
// surrogate's, not Q.
// Keys: DecisionSettings's (preset, lambdas, alpha, weighting, the prediction term's), IfdOptions's (normalisation,
// clip, h, eps0, strict_flips), and tau (> 0, default 1: the spec's softmax(s_i); scale it to the scores).
#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::zeros, torch::NoGradGuard

#include <cmath>   // for std::isfinite
#include <string>  // for std::string
#include <vector>  // for std::vector

#include "core/config.h"         // for Config
#include "core/error.h"          // for ConfigError
#include "loss/decision.h"       // for DecisionSettings, PredictionTerm, row_weights
#include "loss/factual_terms.h"  // for check_shapes
#include "loss/ifd_estimator.h"  // for ifd_estimate, softmax_node, softmax_node_grad
#include "loss/loss.h"           // for Loss, DFCL_REGISTER_LOSS

namespace dfcl::loss {

class IfdSoftmax : public Loss {
 public:
  explicit IfdSoftmax(const Config& s)
      : settings_(DecisionSettings::from(s, "ifd_softmax")),
        options_(IfdOptions::from(s, IfdOptions::preset(settings_.preset))),
        tau_(read_node_tau(s)),
        prediction_(settings_.prediction) {}
  std::string name() const override { return "ifd_softmax"; }

  at::Tensor compute(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const override {
    check_shapes(b, s);
    const std::vector<at::Tensor> gs = estimate(b, s, ctx);
    at::Tensor loss;
    for (size_t k = 0; k < gs.size(); ++k) {
      at::Tensor term =
          softmax_node(gs[k], s.r_hat, settings_.decision_cost_scores(s.c_hat), settings_.lambdas[k], tau_);
      loss = loss.defined() ? loss + term : term;
    }
    if (settings_.alpha > 0) loss = loss + prediction_.compute(b, s, ctx) * settings_.alpha;
    return loss;
  }

  bool value_and_grad(const model::Batch& b, const model::Scores& s, const LossContext& ctx, at::Tensor& value,
                      at::Tensor& d_r, at::Tensor& d_c) const override {
    check_shapes(b, s);
    const std::vector<at::Tensor> gs = estimate(b, s, ctx);
    torch::NoGradGuard no_grad;
    d_r = at::zeros(s.r_hat.sizes(), s.r_hat.options().requires_grad(false));
    d_c = at::zeros(s.c_hat.sizes(), s.c_hat.options().requires_grad(false));
    at::Tensor v = at::zeros({}, s.r_hat.options().dtype(at::kDouble).requires_grad(false));
    for (size_t k = 0; k < gs.size(); ++k)
      v.add_(softmax_node_grad(gs[k], s.r_hat, s.c_hat, settings_.lambdas[k], tau_, d_r, d_c));
    value = v.to(s.r_hat.scalar_type());
    settings_.drop_decision_cost_grad(d_c);
    if (settings_.alpha > 0) prediction_.accumulate(b, s, ctx, settings_.alpha, value, d_r, d_c);
    return true;
  }

 private:
  // G^s per λ of the grid (float64, no graph).
  std::vector<at::Tensor> estimate(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const {
    torch::NoGradGuard no_grad;
    const at::Tensor u = row_weights(b, s, ctx, settings_.ipw);
    std::vector<at::Tensor> out;
    for (double lam : settings_.lambdas)
      out.push_back(
          ifd_estimate(s.r_hat, s.c_hat, b, u, ctx, lam, IfdObjective::kDual, IfdPerturbation::kScore, options_).g_s);
    return out;
  }

  DecisionSettings settings_;
  IfdOptions options_;
  double tau_;
  PredictionTerm prediction_;
};

}  // namespace dfcl::loss

DFCL_REGISTER_LOSS(IfdSoftmax, "ifd_softmax")
