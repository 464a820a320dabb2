// \brief The plain factual loss: the mean over rows of the factual arm's error, with no per-arm balancing.
//
//   L_F = (1/N) sum_i w_i [ a_r l_r(y_r,i, r_hat_{i,t_i}) + a_c l_c(y_c,i, c_hat_{i,t_i}) ],  N = sum_i w_i
//
// For comparison with TSM-SL: on an RCT with unequal arm shares it weights each arm by its share p_j rather
// than 1/M, so its expectation is sum_j p_j E_x[l_j], not the full-table error. Keys as tsm_sl.
#include <torch/torch.h>  // for Tensor::sum, torch::NoGradGuard

#include "loss/factual_terms.h"  // for FactualTerms, check_shapes
#include "loss/loss.h"           // for Loss, DFCL_REGISTER_LOSS

namespace dfcl::loss {

class FactualLoss : public Loss {
 public:
  explicit FactualLoss(const Config& s) : terms_(FactualTerms::from(s)) {}
  std::string name() const override { return "factual"; }

  at::Tensor compute(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const override {
    check_shapes(b, s);
    at::Tensor w = b.weight.to(s.r_hat.scalar_type());
    const double total = ctx.total_weight > 0 ? ctx.total_weight : w.sum().item<double>();
    at::Tensor per_row = terms_.per_row(b, s);
    return total > 0 ? (w * per_row).sum() / total : (w * per_row).sum() * 0;
  }

  // L_F = sum_i (w_i / N) per_row_i; with N = 0 (no weight at all) the value and the gradient are 0, as compute().
  bool value_and_grad(const model::Batch& b, const model::Scores& s, const LossContext& ctx, at::Tensor& value,
                      at::Tensor& d_r, at::Tensor& d_c) const override {
    check_shapes(b, s);
    torch::NoGradGuard no_grad;
    const int64_t M = s.r_hat.size(1);
    at::Tensor scale;  // 1/N for every arm
    if (ctx.total_weight > 0) {
      scale = at::full({M}, 1.0 / ctx.total_weight, s.r_hat.options());
    } else {
      at::Tensor total = b.weight.to(s.r_hat.scalar_type()).sum();  // stays on the device: no host sync
      scale = total.reciprocal().masked_fill_(total.le(0), 0).expand({M});
    }
    terms_.value_and_grad(b, s, scale, value, d_r, d_c);
    return true;
  }

 private:
  FactualTerms terms_;
};

}  // namespace dfcl::loss

DFCL_REGISTER_LOSS(FactualLoss, "factual")
