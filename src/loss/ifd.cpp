// \brief DFCL-IFD: the improved finite-difference decision loss (spec methods-dfcl-dhcl.md §3.7.3, Algorithm 2; the
// reference code's improved_finite_difference), dual form over the λ grid Λ.
//
//   L = α · L_PL − Σ_{λ ∈ Λ} Σ_ij ( G^r_ij r̂_ij [revenue_term] + G^c_ij ĉ_ij [cost_term] ),   G detached
//
// G^r = ΔQ/δ^r and G^c = ΔQ/δ^c on the two entries per row that the minimal flipping perturbations touch (t_i and the
// runner-up for a matched row, t_i and the current arm for a mismatched one), ΔQ the change of Q = rbar − λ cbar
// when the row flips (ifd_estimator.h). The value is the surrogate's, not Q: its gradient is −G (the ascent
// direction of Q), its level carries no meaning.
// Keys: DecisionSettings's (preset, lambdas, alpha, weighting, the prediction term's), IfdOptions's (normalisation,
// clip, h, eps0, strict_flips), and revenue_term (default true), cost_term (default true; false under preset
// reference, whose code drops the G^c ĉ term). Preset reference also makes normalisation self.
#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::zeros, torch::NoGradGuard

#include <string>  // for std::string
#include <vector>  // for std::vector

#include "core/config.h"         // for Config
#include "core/error.h"          // for ConfigError
#include "loss/decision.h"       // for DecisionSettings, PredictionTerm, row_weights
#include "loss/factual_terms.h"  // for check_shapes
#include "loss/ifd_estimator.h"  // for ifd_estimate, IfdOptions
#include "loss/loss.h"           // for Loss, DFCL_REGISTER_LOSS

namespace dfcl::loss {

class Ifd : public Loss {
 public:
  explicit Ifd(const Config& s)
      : settings_(DecisionSettings::from(s, "ifd")),
        options_(IfdOptions::from(s, IfdOptions::preset(settings_.preset))),
        prediction_(settings_.prediction) {
    revenue_term_ = s.get<bool>("revenue_term", true);
    // The G^c·ĉ half is the decision gradient on the cost head: it follows loss.cost_head (off under calibrated).
    cost_term_ = s.get<bool>("cost_term", settings_.decision_cost && settings_.preset != "reference");
    if (cost_term_ && !settings_.decision_cost)
      throw ConfigError("loss.cost_term = true moves the cost head by the decision gradient, but loss.cost_head is "
                        "calibrated (the default); set loss.cost_head=decision for the paper's two-term surrogate");
    if (!revenue_term_ && !cost_term_)
      throw ConfigError(
          "loss.revenue_term and loss.cost_term are both false; the IFD surrogate needs at least one "
          "of G^r·r̂ and G^c·ĉ (the reference code: revenue_term only)");
  }
  std::string name() const override { return "ifd"; }

  at::Tensor compute(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const override {
    check_shapes(b, s);
    at::Tensor gr, gc;
    estimate(b, s, ctx, gr, gc);
    at::Tensor loss;
    if (revenue_term_) loss = -(gr.to(s.r_hat.scalar_type()) * s.r_hat).sum();
    if (cost_term_) {
      at::Tensor lc = -(gc.to(s.c_hat.scalar_type()) * s.c_hat).sum();
      loss = loss.defined() ? loss + lc : lc;
    }
    if (settings_.alpha > 0) loss = loss + prediction_.compute(b, s, ctx) * settings_.alpha;
    return loss;
  }

  bool value_and_grad(const model::Batch& b, const model::Scores& s, const LossContext& ctx, at::Tensor& value,
                      at::Tensor& d_r, at::Tensor& d_c) const override {
    check_shapes(b, s);
    at::Tensor gr, gc;
    estimate(b, s, ctx, gr, gc);
    torch::NoGradGuard no_grad;
    at::Tensor v = at::zeros({}, gr.options());
    if (revenue_term_)
      v.sub_((gr * s.r_hat.detach().to(at::kDouble)).sum());
    else
      gr.zero_();
    if (cost_term_)
      v.sub_((gc * s.c_hat.detach().to(at::kDouble)).sum());
    else
      gc.zero_();
    value = v.to(s.r_hat.scalar_type());
    d_r = gr.neg().to(s.r_hat.scalar_type()).contiguous();
    d_c = gc.neg().to(s.c_hat.scalar_type()).contiguous();
    if (settings_.alpha > 0) prediction_.accumulate(b, s, ctx, settings_.alpha, value, d_r, d_c);
    return true;
  }

 private:
  // Σ_λ G^r and Σ_λ G^c (float64, no graph).
  void estimate(const model::Batch& b, const model::Scores& s, const LossContext& ctx, at::Tensor& gr,
                at::Tensor& gc) const {
    torch::NoGradGuard no_grad;
    const at::Tensor u = row_weights(b, s, ctx, settings_.ipw);
    for (double lam : settings_.lambdas) {
      IfdEstimate e =
          ifd_estimate(s.r_hat, s.c_hat, b, u, ctx, lam, IfdObjective::kDual, IfdPerturbation::kRevenueCost, options_);
      gr = gr.defined() ? gr.add_(e.g_r) : e.g_r;
      gc = gc.defined() ? gc.add_(e.g_c) : e.g_c;
    }
  }

  DecisionSettings settings_;
  IfdOptions options_;
  PredictionTerm prediction_;
  bool revenue_term_ = true, cost_term_ = true;
};

}  // namespace dfcl::loss

DFCL_REGISTER_LOSS(Ifd, "ifd")
