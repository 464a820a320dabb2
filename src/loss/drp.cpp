// \brief DRP, the direct-ranking baseline (spec methods-dfcl-dhcl.md §6): minimise the cost per unit of incremental
// revenue of a soft, score-weighted selection. Binary treatment only (M = 2).
//
//   s_i = tanh(r_hat_i1)   (the ranking score; c_hat and r_hat[:, 0] are unused)
//   P^T_i = w_i e^{s_i} / Σ_{T} w e^{s}   over treated rows,   P^C likewise over control rows (w_i: row weight)
//   dR = Σ_T P^T y^r - Σ_C P^C y^r,   dC = Σ_T P^T y^c - Σ_C P^C y^c
//   L = dC / max(dR, min_dr)
// Guard: where dR <= min_dr the ratio is meaningless (dC/dR -> -∞ as dR -> 0 from below) and the denominator is held
// at min_dr, so only dC is minimised there. A batch without treated or without control rows gives 0.
// Batch-global: the softmax normalisers are sums over the whole batch, so each rank computes DRP on its own batch.
// Multi-rank DRP (not built) would need the four normalised sums Σ w e^s, Σ w e^s y^r, Σ w e^s y^c per group reduced
// across ranks (LossContext::reduce_sum) before the ratio; the per-rank losses would then not sum to the global loss.
// Its decision factor (decision_factors) is the ranking weight e^{tanh(r_hat_i1)}: positive, monotone, order only.
// Keys of the `loss` section: min_dr (default 1e-6, > 0).
#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::tanh, at::exp, torch::NoGradGuard

#include <cmath>  // for std::isfinite

#include "core/config.h"         // for Config
#include "core/error.h"          // for ConfigError, DataError
#include "loss/factual_terms.h"  // for check_shapes
#include "loss/loss.h"           // for Loss, LossContext, DFCL_REGISTER_LOSS

namespace dfcl::loss {

class Drp : public Loss {
 public:
  explicit Drp(const Config& s) : min_dr_(s.get<double>("min_dr", 1e-6)) {
    if (!(min_dr_ > 0) || !std::isfinite(min_dr_))
      throw ConfigError(fmt::format("loss.min_dr is {} ({}); the floor on DRP's incremental revenue must be a finite "
                                    "number > 0, far below the batch's typical revenue uplift (default 1e-6)",
                                    min_dr_, s.origin("min_dr")));
  }
  std::string name() const override { return "drp"; }
  bool learns_factors() const override { return true; }
  /// DRP learns a ranking, not an ROI: its factor is the softmax weight e^{tanh(r_hat_i1)} (B x 1, in [1/e, e]),
  /// positive and monotone in the score, so tables built from it (metrics::factor_scores) rank users as DRP does.
  /// Only its order is meaningful.
  at::Tensor decision_factors(const at::Tensor& r_hat) const override {
    torch::NoGradGuard no_grad;
    if (r_hat.dim() != 2 || r_hat.size(1) != 2)
      throw DataError(fmt::format("loss drp: binary treatment only (2 arms); r_hat has {} columns",
                                  r_hat.dim() == 2 ? r_hat.size(1) : 0));
    return at::exp(at::tanh(r_hat.detach().narrow(1, 1, 1)));
  }

  at::Tensor compute(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const override {
    (void)ctx;
    check_shapes(b, s);
    if (s.r_hat.size(1) != 2)
      throw DataError(fmt::format("loss drp: binary treatment only (2 arms: control and treated); the data has {} "
                                  "arms (use dhcl for multiple arms)",
                                  s.r_hat.size(1)));
    const auto dt = s.r_hat.scalar_type();
    at::Tensor treated, control, yr, yc;
    {
      torch::NoGradGuard no_grad;
      const at::Tensor w = b.weight.to(dt), is_t = b.t.eq(1).to(dt);
      treated = w * is_t, control = w * (1 - is_t);
      yr = b.y_r.to(dt), yc = b.y_c.to(dt);
      const at::Tensor groups = at::stack({treated.sum(), control.sum()}).to(at::kCPU, at::kDouble);
      if (!(groups[0].item<double>() > 0) || !(groups[1].item<double>() > 0)) return s.r_hat.sum() * 0;
    }
    // tanh bounds the score, so e^s lies in [1/e, e]: no max-subtraction needed.
    const at::Tensor e = at::exp(at::tanh(s.r_hat.select(1, 1)));
    const at::Tensor et = e * treated, ec = e * control;
    const at::Tensor zt = et.sum(), zc = ec.sum();
    const at::Tensor dR = at::dot(et, yr) / zt - at::dot(ec, yr) / zc;
    const at::Tensor dC = at::dot(et, yc) / zt - at::dot(ec, yc) / zc;
    return dC / dR.clamp_min(min_dr_);
  }

 private:
  double min_dr_;
};

}  // namespace dfcl::loss

DFCL_REGISTER_LOSS(Drp, "drp")
