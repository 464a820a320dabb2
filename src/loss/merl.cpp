// \brief DFCL-MER: the maximum-entropy regularised loss L_MERL (spec methods-dfcl-dhcl.md §3.6), the dual decision
// loss with the argmax relaxed to the tempered softmax that solves the entropy-regularised per-user problem.
//
//   L = α · L_PL + Σ_{λ∈Λ} −(1/N) Σ_i u_i (y^r_i − λ y^c_i) softmax((r̂_i − λ ĉ_i) / τ)_{t_i}
//
// u_i = w_i / p_{t_i} (weighting: ipw, the paper) or w_i (weighting: raw, the reference code's MER cell); N the global
// batch weight (the paper writes a sum; a mean only rescales relative to α). τ = 1 is pll; τ → 0 approaches the
// argmax policy (and saturates: the gradient vanishes away from ties).
// Keys: those of DecisionSettings plus `tau` (> 0). Default τ = 1 under the paper and none presets (the paper's
// values are per dataset: 3 on Criteo, 0.01 on the marketing data; set them explicitly), 5 under the reference
// preset (the DFCL reference notebook).
#include "core/config.h"          // for Config
#include "loss/decision.h"        // for DecisionSettings
#include "loss/loss.h"            // for DFCL_REGISTER_LOSS
#include "loss/softmax_policy.h"  // for SoftmaxPolicyLoss

namespace dfcl::loss {

class Merl : public SoftmaxPolicyLoss {
 public:
  explicit Merl(const Config& s) : Merl(s, DecisionSettings::from(s, "merl")) {}
  std::string name() const override { return "merl"; }

 protected:
  std::vector<Term> terms(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const override {
    return dual_terms(b, s, ctx);
  }

 private:
  Merl(const Config& s, DecisionSettings d)
      : SoftmaxPolicyLoss(d, read_tau(s, d.preset == "reference" ? 5.0 : 1.0)) {}
};

}  // namespace dfcl::loss

DFCL_REGISTER_LOSS(Merl, "merl")
