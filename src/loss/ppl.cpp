// \brief PPL: Bi-DFCL's primal policy loss (spec methods-bidfcl.md §3.3, methods-dfcl-dhcl.md §7): the IPW revenue of
// the softmax policy at the λ* that meets a given per-capita training budget.
//
//   L = α · L_PL + Σ_{b ∈ budgets} −(1/N) Σ_i u_i y^r_i softmax((r̂_i − λ*_b ĉ_i) / τ)_{t_i}
//
// λ*_b: the primal λ of budget b (decision.h primal_lambda: bisection of the IPW per-capita spend of the argmax
// policy), found on each batch (lambda_source: batch, reduced across ranks) or by the trainer on an RCT sample at the
// start of each epoch (lambda_source: sample, LossContext::sample_lambda). The search always uses the IPW weights
// 1/p_t (its spend must estimate the policy's spend); `weighting` only chooses u_i in the loss (ipw: w_i / p_{t_i},
// raw: w_i). λ* is a constant of the batch: no gradient flows through it. Revenue term only, as in the paper; the
// mean over the batch instead of the paper's sum (a scale, relative to α).
// Keys: DecisionSettings's (preset, alpha, weighting, the prediction term's; not `lambdas`), plus
//   budgets: [b, ...]  required, each > 0 (per-capita training budgets, in cost units per user)
//   lambda_source: batch (default) | sample
//   tau: > 0, default 1 (Bi-DFCL does not report its τ; scale it to the scores)
#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for torch::NoGradGuard

#include <cmath>   // for std::isfinite
#include <string>  // for std::string
#include <vector>  // for std::vector

#include "core/config.h"          // for Config
#include "core/error.h"           // for ConfigError, DataError
#include "loss/decision.h"        // for DecisionSettings, primal_lambda, row_weights
#include "loss/loss.h"            // for DFCL_REGISTER_LOSS
#include "loss/softmax_policy.h"  // for SoftmaxPolicyLoss

namespace dfcl::loss {

namespace {
DecisionSettings ppl_settings(const Config& s) {
  if (s.has("lambdas"))
    throw ConfigError("loss.lambdas is not used by ppl: its λ* comes from the training budgets; give loss.budgets "
                      "(e.g. budgets: [0.3]) and drop loss.lambdas, or use pll / merl for a λ grid");
  return DecisionSettings::from(s, "ppl");
}

std::string read_source(const Config& s) {
  const std::string src = s.get<std::string>("lambda_source", "batch");
  if (src != "batch" && src != "sample")
    throw ConfigError(fmt::format("loss.lambda_source is '{}'; use batch (λ* found on each training batch) or sample "
                                  "(λ* found once per epoch on an RCT sample, train.lambda_sample_rows)",
                                  src));
  return src;
}
}  // namespace

class Ppl : public SoftmaxPolicyLoss {
 public:
  explicit Ppl(const Config& s)
      : SoftmaxPolicyLoss(ppl_settings(s), read_tau(s, 1.0)), budgets_(read_primal_budgets(s, "ppl")), source_(read_source(s)) {}
  std::string name() const override { return "ppl"; }
  std::vector<double> lambda_budgets() const override { return budgets_; }
  std::string lambda_source() const override { return source_; }

 protected:
  std::vector<Term> terms(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const override {
    torch::NoGradGuard no_grad;
    const std::vector<double> lambdas = primal_lambdas(budgets_, source_, "ppl", b, s, ctx);
    const at::Tensor u = scaled_row_weights(b, s, ctx);
    const at::Tensor gain = u * b.y_r.to(u.scalar_type());
    std::vector<Term> out;
    for (double lam : lambdas) out.push_back(Term{lam, gain});
    return out;
  }

 private:
  std::vector<double> budgets_;
  std::string source_;
};

}  // namespace dfcl::loss

DFCL_REGISTER_LOSS(Ppl, "ppl")
