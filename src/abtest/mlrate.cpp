// \brief MLRATE (Guo et al. 2021): OLS of the outcome on [1, T, g, T (g - gbar)] with the cross-fitted prediction g,
// effect = the coefficient of T, HC1 (Huber-White) robust SE; spec Part C.4.
//
// Two passes over the units after the means: the normal equations Z'Z, Z'y (one all-reduce), then the sandwich's
// meat sum e_i^2 z_i z_i' (one all-reduce). Cov = n / (n - k) (Z'Z)^-1 (sum e^2 z z') (Z'Z)^-1 with k = 4.
#include <fmt/format.h>  // for fmt::format

#include <cmath>  // for std::sqrt

#include "abtest/internal.h"    // for Design, make_design, fill_inference, DFCL_REGISTER_ESTIMATOR
#include "abtest/stats.h"       // for NormalEquations, cholesky, cholesky_solve, cholesky_inverse, mat_mul
#include "core/error.h"         // for DataError
#include "dist/communicator.h"  // for Communicator

namespace dfcl::abtest {

Design make_design(const Analysis& a, const std::vector<double>& g, bool interaction) {
  const std::vector<double>& y = a.outcome();
  std::vector<double> s{0.0, 0.0, double(y.size())};
  for (size_t i = 0; i < y.size(); ++i) s[0] += g[i], s[1] += y[i];
  a.comm().allreduce_values(s);
  Design d;
  d.gbar = s[0] / s[2], d.ybar = s[1] / s[2];
  d.interaction = interaction;
  d.k = interaction ? 4 : 3;
  return d;
}

namespace {
class Mlrate : public Estimator {
 public:
  std::string name() const override { return "mlrate"; }
  bool applicable(const Analysis& a) const override { return a.num_features() > 0; }
  Estimate estimate(Analysis& a) const override {
    const std::vector<double>& g = a.prediction();
    const std::vector<double>& y = a.outcome();
    const Units& units = a.units();
    const int64_t n = units.size();
    const std::string covariate = "g (cross-fitted " + a.options().predictor + ")";
    const double balance_z =
        check_balance(arm_moments(y.data(), g.data(), units.t.data(), n, a.comm()), a, "mlrate", covariate, true);
    const Design d = make_design(a, g, true);
    const int k = d.k;
    NormalEquations ne(k);
    double z[4];
    for (int64_t i = 0; i < n; ++i) {
      d.row(units.t[i], g[i], z);
      ne.add(z, 1.0, y[i] - d.ybar);
    }
    ne.reduce(a.comm());
    std::vector<double> l = ne.zwz();
    const int bad = cholesky(l, k);
    if (bad >= 0)
      throw DataError(
          fmt::format("{}mlrate: the regression design [1, T, g, T (g - gbar)] is singular (column {} is a "
                      "linear combination of the others): the prediction g does not vary; check the "
                      "features, or use dim/cuped",
                      where_prefix(units), Design::column(bad)));
    const std::vector<double> beta = cholesky_solve(l, k, ne.zwy());
    NormalEquations meat(k);
    for (int64_t i = 0; i < n; ++i) {
      d.row(units.t[i], g[i], z);
      double e = y[i] - d.ybar;
      for (int j = 0; j < k; ++j) e -= z[j] * beta[j];
      meat.add(z, e * e, 0.0);
    }
    meat.reduce(a.comm());
    const std::vector<double> inv = cholesky_inverse(l, k);
    const std::vector<double> hc0 = mat_mul(mat_mul(inv, meat.zwz(), k), inv, k);
    const double total = ne.sum_w(), hc1 = total / (total - k);

    Estimate e;
    e.method = "mlrate";
    e.estimand = "difference in means";
    e.effect = beta[1];
    e.se = std::sqrt(hc1 * hc0[size_t(k) + 1]);
    fill_inference(e, a.options().alpha);
    e.details["intercept"] = d.intercept(beta);
    e.details["gamma"] = beta[2];
    e.details["interaction"] = beta[3];
    e.details["gbar"] = d.gbar;
    e.details["se_hc0"] = std::sqrt(hc0[size_t(k) + 1]);
    e.details["folds"] = a.options().folds;
    e.details["predictor"] = a.options().predictor;
    warn_if_unbalanced(e, balance_z, covariate);
    return e;
  }
};
}  // namespace

}  // namespace dfcl::abtest

DFCL_REGISTER_ESTIMATOR(Mlrate, "mlrate")
