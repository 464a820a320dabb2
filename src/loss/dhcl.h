// \brief DHCL's decision factors (spec methods-dfcl-dhcl.md §5, [RECON]): the loss's settings and the map from the
// uplift net's r_hat columns to the factors θ (binary: the ROI τ^r/τ^c; multi-arm: the adjacent-step ROIs).
//
// A factor model reuses the uplift net: column j = 1..M-1 of r_hat holds the raw score s_ij of step j (arm j-1 -> j),
// with the identity output transform; c_hat and column 0 of r_hat are unused. The factor is
//   sigmoid form:  θ_ij = K · sigmoid(s_ij)   (in (0, K))
//   exp form:      θ_ij = K · exp(s_ij)       (in (0, ∞))
// with s clamped so that the unscaled factor stays in [ε, 1 - ε] (sigmoid) or [ε, 1/ε] (exp).
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

namespace dfcl {
class Config;
}

namespace dfcl::loss {

/// Keys of the `loss` section of `dhcl` (docs/methods.md):
///   form:  sigmoid (default) | exp
///   scale: K > 0 (default 1): the factor is K·g(s); the loss divides y^r by K. Pick K >= the largest ROI (sigmoid).
///   clamp: ε (default 1e-6): sigmoid in [0, 0.5) (0 = no clamp); exp in (0, 0.5)
struct DhclSettings {
  enum class Form { kSigmoid, kExp };
  Form form = Form::kSigmoid;
  double scale = 1;
  double clamp = 1e-6;

  /// Throws ConfigError naming loss.<key> and the fix.
  static DhclSettings from(const Config& section);
  /// The clamp on the raw score s: [-bound, bound] (infinity when clamp = 0).
  double logit_bound() const;
  /// θ = K·g(clamp(s)) for columns 1..M-1 of r_hat (B x M, M >= 2): B x (M-1), no graph. Throws DataError when M < 2.
  at::Tensor factors(const at::Tensor& r_hat) const;
};

}  // namespace dfcl::loss
