// \brief PIFD: Bi-DFCL's primal improved finite difference (spec methods-bidfcl.md §3.4, Eq. 17, Algorithm 3): the
// IFD estimator at the λ* that meets each per-capita training budget, on the primal objective Q = rbar (revenue only,
// as the primal decision loss L_DL = −rbar).
//
//   node softmax (default, Eq. 17 read literally):  L = α · L_PL − Σ_b Σ_ij G^s_ij softmax(a_i / τ)_j
//   node score (the dimensionally consistent form):  L = α · L_PL − Σ_b Σ_ij G^s_ij a_ij
//   a = r̂ − λ*_b ĉ,  G^s = ΔQ / h detached (ifd_estimator.h, score perturbations: every other arm of a matched row)
//
// λ*_b: the primal λ of budget b (decision.h primal_lambda, IPW weights 1/p_t whatever `weighting`), found on each
// batch (lambda_source: batch, reduced across ranks) or by the trainer on an RCT sample each epoch (lambda_source:
// sample, LossContext::sample_lambda). λ* is a constant: no gradient flows through it, and the perturbation keeps it
// fixed (the "semi-black-box" part). λ* may be 0 (the budget does not bind): then a = r̂. The value is the surrogate's.
// Keys: DecisionSettings's (preset, alpha, weighting, the prediction term's; not lambdas), IfdOptions's
// (normalisation, clip, h, eps0, strict_flips), budgets (required), lambda_source (batch | sample), node (softmax |
// score), tau (> 0, default 1; softmax node only).
#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::zeros, torch::NoGradGuard

#include <cmath>   // for std::isfinite
#include <string>  // for std::string
#include <vector>  // for std::vector

#include "core/config.h"         // for Config
#include "core/error.h"          // for ConfigError, DataError
#include "loss/decision.h"       // for DecisionSettings, PredictionTerm, primal_lambda, row_weights
#include "loss/factual_terms.h"  // for check_shapes
#include "loss/ifd_estimator.h"  // for ifd_estimate, softmax_node, softmax_node_grad
#include "loss/loss.h"           // for Loss, DFCL_REGISTER_LOSS

namespace dfcl::loss {

namespace {
DecisionSettings pifd_settings(const Config& s) {
  if (s.has("lambdas"))
    throw ConfigError(
        "loss.lambdas is not used by pifd: its λ* comes from the training budgets; give loss.budgets "
        "(e.g. budgets: [0.3]) and drop loss.lambdas, or use ifd / ifd_softmax for a λ grid");
  return DecisionSettings::from(s, "pifd");
}

std::string pifd_choice(const Config& s, const std::string& key, const std::string& fallback, const std::string& a,
                        const std::string& b, const std::string& help) {
  const std::string v = s.get<std::string>(key, fallback);
  if (v != a && v != b) throw ConfigError(fmt::format("loss.{} is '{}' ({}); use {}", key, v, s.origin(key), help));
  return v;
}

}  // namespace

class Pifd : public Loss {
 public:
  explicit Pifd(const Config& s)
      : settings_(pifd_settings(s)),
        options_(IfdOptions::from(s, IfdOptions::preset(settings_.preset))),
        budgets_(read_primal_budgets(s, "pifd")),
        source_(pifd_choice(s, "lambda_source", "batch", "batch", "sample",
                            "batch (λ* found on each training batch) or sample (λ* found once per epoch on an RCT "
                            "sample, train.lambda_sample_rows)")),
        softmax_node_(pifd_choice(s, "node", "softmax", "softmax", "score",
                                  "softmax (G attached to softmax(a/τ), Eq. 17 read literally) or score (G attached "
                                  "to a = r̂ − λ* ĉ)") == "softmax"),
        tau_(read_node_tau(s)),
        prediction_(settings_.prediction) {}
  std::string name() const override { return "pifd"; }
  std::vector<double> lambda_budgets() const override { return budgets_; }
  std::string lambda_source() const override { return source_; }

  at::Tensor compute(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const override {
    check_shapes(b, s);
    std::vector<double> lams;
    const std::vector<at::Tensor> gs = estimate(b, s, ctx, lams);
    at::Tensor loss;
    for (size_t k = 0; k < gs.size(); ++k) {
      const at::Tensor c = settings_.decision_cost_scores(s.c_hat);
      at::Tensor term = softmax_node_ ? softmax_node(gs[k], s.r_hat, c, lams[k], tau_)
                                      : -(gs[k].to(s.r_hat.scalar_type()) * (s.r_hat - c * lams[k])).sum();
      loss = loss.defined() ? loss + term : term;
    }
    if (settings_.alpha > 0) loss = loss + prediction_.compute(b, s, ctx) * settings_.alpha;
    return loss;
  }

  bool value_and_grad(const model::Batch& b, const model::Scores& s, const LossContext& ctx, at::Tensor& value,
                      at::Tensor& d_r, at::Tensor& d_c) const override {
    check_shapes(b, s);
    std::vector<double> lams;
    const std::vector<at::Tensor> gs = estimate(b, s, ctx, lams);
    torch::NoGradGuard no_grad;
    d_r = at::zeros(s.r_hat.sizes(), s.r_hat.options().requires_grad(false));
    d_c = at::zeros(s.c_hat.sizes(), s.c_hat.options().requires_grad(false));
    at::Tensor v = at::zeros({}, s.r_hat.options().dtype(at::kDouble).requires_grad(false));
    for (size_t k = 0; k < gs.size(); ++k) {
      if (softmax_node_) {
        v.add_(softmax_node_grad(gs[k], s.r_hat, s.c_hat, lams[k], tau_, d_r, d_c));
      } else {
        const at::Tensor a = s.r_hat.detach().to(at::kDouble) - s.c_hat.detach().to(at::kDouble) * lams[k];
        v.sub_((gs[k] * a).sum());
        d_r.sub_(gs[k].to(d_r.scalar_type()));
        d_c.add_((gs[k] * lams[k]).to(d_c.scalar_type()));
      }
    }
    value = v.to(s.r_hat.scalar_type());
    settings_.drop_decision_cost_grad(d_c);
    if (settings_.alpha > 0) prediction_.accumulate(b, s, ctx, settings_.alpha, value, d_r, d_c);
    return true;
  }

 private:
  // λ*_b per budget and G^s at each (float64, no graph).
  std::vector<at::Tensor> estimate(const model::Batch& b, const model::Scores& s, const LossContext& ctx,
                                   std::vector<double>& lams) const {
    torch::NoGradGuard no_grad;
    lams = primal_lambdas(budgets_, source_, "pifd", b, s, ctx);
    const at::Tensor u = row_weights(b, s, ctx, settings_.ipw);
    std::vector<at::Tensor> out;
    for (double lam : lams)
      out.push_back(
          ifd_estimate(s.r_hat, s.c_hat, b, u, ctx, lam, IfdObjective::kPrimal, IfdPerturbation::kScore, options_).g_s);
    return out;
  }

  DecisionSettings settings_;
  IfdOptions options_;
  std::vector<double> budgets_;
  std::string source_;
  bool softmax_node_;
  double tau_;
  PredictionTerm prediction_;
};

}  // namespace dfcl::loss

DFCL_REGISTER_LOSS(Pifd, "pifd")
