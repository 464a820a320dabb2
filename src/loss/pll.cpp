// \brief DFCL-PL: the policy learning loss L_PLL (spec methods-dfcl-dhcl.md §3.5), the dual decision loss with the
// argmax relaxed to a softmax over arms at temperature 1.
//
//   L = α · L_PL + Σ_{λ∈Λ} −(1/N) Σ_i u_i (y^r_i − λ y^c_i) softmax(r̂_i − λ ĉ_i)_{t_i}
//
// u_i = w_i / p_{t_i} (weighting: ipw, the paper) or w_i (weighting: raw, the reference code's PL cell); N the global
// batch weight. The paper writes a sum over rows; this is the mean (a scale only, which matters relative to α).
// Keys of the `loss` section: those of DecisionSettings (preset, lambdas, alpha, weighting, and the prediction
// term's revenue_loss, cost_loss, revenue_weight, cost_weight). There is no `tau`: merl is this loss with one.
#include "core/config.h"          // for Config
#include "loss/decision.h"        // for DecisionSettings
#include "loss/loss.h"            // for DFCL_REGISTER_LOSS
#include "loss/softmax_policy.h"  // for SoftmaxPolicyLoss

namespace dfcl::loss {

class Pll : public SoftmaxPolicyLoss {
 public:
  explicit Pll(const Config& s) : SoftmaxPolicyLoss(DecisionSettings::from(s, "pll"), 1.0) {}
  std::string name() const override { return "pll"; }

 protected:
  std::vector<Term> terms(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const override {
    return dual_terms(b, s, ctx);
  }
};

}  // namespace dfcl::loss

DFCL_REGISTER_LOSS(Pll, "pll")
