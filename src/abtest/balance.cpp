// \brief The balance check of a covariate: randomisation balances every pre-assignment covariate between the arms.
//
// A covariate whose arm means differ far beyond sampling error was affected by the treatment, or encodes the arm (a
// post-assignment feature, the arm column among the features). Adjusting for it removes part of the effect it
// carries: measured, CUPAC with a feature that separates the arms reported -0.003 for a true effect of -4.5. Such a
// covariate is refused (|z| > kRefuseZ: p < 6e-7 under randomisation); a milder imbalance is a warning.
#include <fmt/format.h>  // for fmt::format

#include <cmath>  // for std::sqrt, std::fabs, INFINITY

#include "abtest/internal.h"  // for check_balance, where_prefix, feature_name
#include "abtest/stats.h"     // for ArmMoments, arm_moments
#include "core/error.h"       // for DataError

namespace dfcl::abtest {
namespace {
constexpr double kRefuseZ = 5.0, kWarnZ = 3.89;  // two-sided p 5.7e-7 and 1e-4 under randomisation

// Welch z of the difference between the arm means (mean, sample variance, count per arm).
double z_of(double mt, double vt, double nt, double mc, double vc, double nc) {
  const double se = std::sqrt(vt / nt + vc / nc), d = mt - mc;
  return se > 0 ? d / se : (d == 0 ? 0.0 : INFINITY);
}
}  // namespace

double check_balance(const ArmMoments& m, const Analysis& a, const std::string& method, const std::string& covariate,
                     bool from_features) {
  const Units& units = a.units();
  const Moments &t = m.arm[1], &c = m.arm[0];
  const double z = z_of(t.mean_v, t.var_v(), t.n, c.mean_v, c.var_v(), c.n);
  if (std::fabs(z) <= kRefuseZ) return z;
  // Name the feature that carries the imbalance when the covariate is the ML prediction.
  std::string culprit;
  if (from_features && a.num_features() > 0) {
    const int F = a.num_features();
    const int64_t n = units.size();
    std::vector<double> col(static_cast<size_t>(n));
    double worst = 0;
    int worst_j = -1;
    for (int j = 0; j < F; ++j) {  // collective: every rank is here (z came from reduced sums)
      for (int64_t i = 0; i < n; ++i) col[size_t(i)] = units.x[size_t(i) * F + j];
      const ArmMoments f = arm_moments(col.data(), nullptr, units.t.data(), n, a.comm());
      const Moments &ft = f.arm[1], &fc = f.arm[0];
      const double zj = z_of(ft.mean_u, ft.var_u(), ft.n, fc.mean_u, fc.var_u(), fc.n);
      if (std::fabs(zj) > worst) worst = std::fabs(zj), worst_j = j;
    }
    if (worst_j >= 0 && worst > kRefuseZ)
      culprit = fmt::format("; the feature '{}' differs most (z = {:.3g}): drop it from the features",
                            feature_name(units, worst_j), worst);
  }
  throw DataError(fmt::format(
      "{}{}: the covariate '{}' differs between the arms by z = {:.4g} (treatment mean {:.6g}, control mean {:.6g}); "
      "randomisation balances every covariate measured before assignment, so this one was affected by the treatment "
      "or encodes the arm, and adjusting for it would remove part of the effect{}. Use covariates measured before the "
      "experiment",
      where_prefix(units), method, covariate, z, m.arm[1].mean_v, m.arm[0].mean_v, culprit));
}

void warn_if_unbalanced(Estimate& e, double z, const std::string& covariate) {
  e.details["covariate_balance_z"] = z;
  if (std::fabs(z) > kWarnZ)
    e.warnings.push_back(fmt::format(
        "the covariate '{}' differs between the arms by z = {:.3g} (p < 1e-4 under randomisation): check that it was "
        "measured before assignment",
        covariate, z));
}

}  // namespace dfcl::abtest
