// \brief TSM-SL: the two-stage model's prediction loss L_PL (spec methods-dfcl-dhcl.md §3.2, eq. 3).
//
//   L_PL = (1/M) sum_j (1/N_j) sum_{i: t_i = j} w_i [ a_r l_r(y_r,i, r_hat_{i,j}) + a_c l_c(y_c,i, c_hat_{i,j}) ]
//
// a mean inside each arm, then an average over arms. On RCT data E[L_PL] is the full-table error
// (1/M) sum_j E_x[l(r_j(x), r_hat_j(x)) + ...] (Theorem 1), whatever the arm shares are.
// N_j: the arm's weighted row count in the batch (default), LossContext::arm_rows, or p_j * N with the
// dataset's RCT propensities (the inverse-propensity form). An arm with N_j = 0 contributes 0.
// Keys of the `loss` section: name, revenue_loss / cost_loss (mse | bce), revenue_weight / cost_weight (a_r, a_c).
#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::zeros, Tensor::index_add_, torch::NoGradGuard

#include "core/error.h"          // for DataError
#include "loss/factual_terms.h"  // for FactualTerms, check_shapes
#include "loss/loss.h"           // for Loss, DFCL_REGISTER_LOSS

namespace dfcl::loss {

class TsmSl : public Loss {
 public:
  explicit TsmSl(const Config& s) : terms_(FactualTerms::from(s)) {}
  std::string name() const override { return "tsm_sl"; }

  at::Tensor compute(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const override {
    check_shapes(b, s);
    at::Tensor coef;  // w_i / (M N_{t_i}): a constant of the batch, never differentiated
    {
      torch::NoGradGuard no_grad;
      coef = b.weight.to(s.r_hat.scalar_type()) * arm_scale(b, s, ctx).index_select(0, b.t);
    }
    at::Tensor per_row = terms_.per_row(b, s);
    return (coef * per_row).sum();
  }

  // L_PL is one weighted sum of per-row errors, so its score gradient is coef_i l'(y_i, p_i) at (i, t_i).
  bool value_and_grad(const model::Batch& b, const model::Scores& s, const LossContext& ctx, at::Tensor& value,
                      at::Tensor& d_r, at::Tensor& d_c) const override {
    check_shapes(b, s);
    terms_.value_and_grad(b, s, arm_scale(b, s, ctx), value, d_r, d_c);
    return true;
  }

 private:
  // 1 / (M N_j) per arm (0 where N_j = 0), in the scores' dtype and device; no host sync.
  static at::Tensor arm_scale(const model::Batch& b, const model::Scores& s, const LossContext& ctx) {
    torch::NoGradGuard no_grad;
    const int64_t M = s.r_hat.size(1);
    const auto opts = s.r_hat.options().requires_grad(false);
    at::Tensor n;
    if (!ctx.arm_rows.empty()) {
      n = per_arm(ctx.arm_rows, M, "arm_rows", opts);
    } else if (!ctx.arm_propensity.empty()) {
      n = per_arm(ctx.arm_propensity, M, "arm_propensity", opts);
      if (ctx.total_weight > 0)
        n.mul_(ctx.total_weight);
      else
        n.mul_(b.weight.to(s.r_hat.scalar_type()).sum());
    } else {
      n = at::zeros({M}, opts).index_add_(0, b.t, b.weight.to(s.r_hat.scalar_type()));
    }
    return n.reciprocal().div_(double(M)).masked_fill_(n.le(0), 0);
  }

  static at::Tensor per_arm(const std::vector<double>& v, int64_t M, const char* what, const at::TensorOptions& o) {
    if (static_cast<int64_t>(v.size()) != M)
      throw DataError(fmt::format("loss tsm_sl: LossContext::{} has {} values for {} arms", what, v.size(), M));
    for (double x : v)
      if (!(x >= 0))
        throw DataError(fmt::format("loss tsm_sl: LossContext::{} holds {}; values must be >= 0", what, x));
    return at::tensor(v, at::TensorOptions().dtype(at::kDouble)).to(o.device(), o.dtype().toScalarType());
  }

  FactualTerms terms_;
};

}  // namespace dfcl::loss

DFCL_REGISTER_LOSS(TsmSl, "tsm_sl")
