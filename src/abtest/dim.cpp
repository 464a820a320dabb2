// \brief DIM: the difference in means with the Welch (Neyman) SE; spec Part C.1.
//
// effect = mean_t(u) - mean_c(u), SE^2 = s_t^2 / n_t + s_c^2 / n_c (sample variances, n - 1). On a ratio metric u is
// the group-specific linearisation W (analysis.cpp), so the effect is R_t - R_c and the SE the delta-method SE.
// details.relative_effect = effect / mean_c, with the delta-method SE of mean_t / mean_c - 1 (independent arms).
#include <cmath>  // for std::sqrt

#include "abtest/internal.h"  // for difference_in_means, fill_inference, DFCL_REGISTER_ESTIMATOR
#include "abtest/stats.h"     // for arm_moments

namespace dfcl::abtest {

Estimate difference_in_means(const std::vector<double>& u, const Analysis& a, const std::string& method) {
  const Units& units = a.units();
  const ArmMoments m = arm_moments(u.data(), nullptr, units.t.data(), units.size(), a.comm());
  const Moments &t = m.arm[1], &c = m.arm[0];
  const double vt = t.var_u() / t.n, vc = c.var_u() / c.n;  // variances of the two arm means
  Estimate e;
  e.method = method;
  e.estimand = "difference in means";
  e.effect = t.mean_u - c.mean_u;
  e.se = std::sqrt(vt + vc);
  fill_inference(e, a.options().alpha);
  e.details["n_treatment"] = int64_t(t.n);
  e.details["n_control"] = int64_t(c.n);
  e.details["mean_treatment"] = t.mean_u;
  e.details["mean_control"] = c.mean_u;
  e.details["sd_treatment"] = std::sqrt(t.var_u());
  e.details["sd_control"] = std::sqrt(c.var_u());
  if (c.mean_u != 0) {
    const double rt = t.mean_u, rc = c.mean_u;
    e.details["relative_effect"] = rt / rc - 1;
    e.details["relative_se"] = std::sqrt(vt / (rc * rc) + rt * rt * vc / (rc * rc * rc * rc));
  }
  return e;
}

namespace {
class Dim : public Estimator {
 public:
  std::string name() const override { return "dim"; }
  bool applicable(const Analysis&) const override { return true; }
  Estimate estimate(Analysis& a) const override { return difference_in_means(a.outcome(), a, "dim"); }
};
}  // namespace

}  // namespace dfcl::abtest

DFCL_REGISTER_ESTIMATOR(Dim, "dim")
