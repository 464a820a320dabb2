// \brief CUPED (Deng, Xu, Kohavi, Walker 2013): the pre-period covariate as a control variate; spec Part C.2.
//
//   theta = cov(X, Y) / var(X) pooled over both arms (the same theta in both arms; it equals the OLS slope of Y on X
//           with an intercept), Y_adj = Y - theta (X - mean X), effect and SE = DIM on Y_adj (Welch).
// theta is estimated and then treated as fixed in the SE: first-order correct (its estimation error adds O(1/n) to
// the variance of the estimate), so the SE is close to Var(DIM) (1 - rho^2). On a ratio metric Y is the linearised W
// and X the pre-period column as given.
#include <fmt/format.h>  // for fmt::format

#include <cmath>  // for std::sqrt, std::fabs

#include "abtest/internal.h"  // for control_variate, difference_in_means, check_balance, DFCL_REGISTER_ESTIMATOR
#include "abtest/stats.h"     // for arm_moments
#include "core/error.h"       // for DataError

namespace dfcl::abtest {

Estimate control_variate(const std::vector<double>& x, const Analysis& a, const std::string& method,
                         const std::string& covariate) {
  const Units& units = a.units();
  const std::vector<double>& y = a.outcome();
  const int64_t n = units.size();
  const ArmMoments m = arm_moments(y.data(), x.data(), units.t.data(), n, a.comm());
  const Moments& p = m.pooled;
  const double sd = std::sqrt(p.svv / p.n);
  if (!(sd > 1e-12 * std::fabs(p.mean_v)) || sd == 0)
    throw DataError(
        fmt::format("{}{}: the covariate '{}' has zero variance (all {} units have {}): it carries no "
                    "information about the outcome; drop it (the estimate then equals DIM)",
                    where_prefix(units), method, covariate, int64_t(p.n), p.mean_v));
  // A covariate that determines the outcome linearly (the metric itself as 'pre', or a prediction that saw the
  // outcome) leaves the adjusted outcome nothing but rounding, whose DIM can look significant (p = 0.001 on an effect
  // of 3e-16). Refused.
  const double rho = p.suu > 0 ? p.suv / std::sqrt(p.suu * p.svv) : 0.0;
  if (std::fabs(rho) > 1 - 1e-9)
    throw DataError(fmt::format("{}{}: the covariate '{}' determines the outcome exactly (correlation {:.12g}): it is "
                                "the outcome itself or computed from it, so the adjusted outcome has no variance left "
                                "and any effect would be rounding; use a covariate measured before the experiment",
                                where_prefix(units), method, covariate, rho));
  const double balance_z = check_balance(m, a, method, covariate, &x != &units.pre);  // CUPAC: the prediction
  const double theta = p.suv / p.svv, xbar = p.mean_v;
  std::vector<double> adjusted(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) adjusted[i] = y[i] - theta * (x[i] - xbar);
  Estimate e = difference_in_means(adjusted, a, method);
  e.details["covariate"] = covariate;
  e.details["theta"] = theta;
  e.details["covariate_mean"] = xbar;
  e.details["correlation"] = p.suu > 0 ? p.suv / std::sqrt(p.suu * p.svv) : 0.0;
  e.details["covariate_mean_treatment"] = m.arm[1].mean_v;
  e.details["covariate_mean_control"] = m.arm[0].mean_v;
  warn_if_unbalanced(e, balance_z, covariate);
  e.details["note"] = "theta is estimated on both arms pooled and treated as fixed in the SE (first-order correct)";
  return e;
}

namespace {
class Cuped : public Estimator {
 public:
  std::string name() const override { return "cuped"; }
  bool applicable(const Analysis& a) const override { return a.has_pre(); }
  Estimate estimate(Analysis& a) const override {
    if (!a.has_pre())
      throw DataError(
          fmt::format("{}cuped needs a pre-period covariate column, and the units have none; give one, or "
                      "run the other estimators",
                      where_prefix(a.units())));
    return control_variate(a.units().pre, a, "cuped", a.units().pre_name);
  }
};
}  // namespace

}  // namespace dfcl::abtest

DFCL_REGISTER_ESTIMATOR(Cuped, "cuped")
