// \brief Multi-arm cost curve (see cost_curve.h).
#include "metrics/cost_curve.h"

#include <fmt/format.h>  // for fmt::format

#include <limits>  // for std::numeric_limits

#include "core/error.h"  // for ConfigError

namespace dfcl::metrics {

CostCurve cost_curve(const IpwPath& path, const CostCurveOptions& opt) {
  const RctSample& s = path.sample();
  return cost_curve_from(
      s.m, [&](int j) { return uniform_policy_value(s, j); },
      [&](const std::function<void(double, const PolicyValue&)>& fn) { path.sweep(fn); }, opt);
}

CostCurve cost_curve_from(int arms, const std::function<PolicyValue(int)>& uniform, const PolicySweep& sweep,
                          const CostCurveOptions& opt) {
  if (opt.quantiles < 1) throw ConfigError(fmt::format("cost curve quantiles is {}; it must be >= 1", opt.quantiles));
  if (opt.max_points == 1 || opt.max_points < 0)
    throw ConfigError(fmt::format("cost curve max_points is {}; keep 0 (all) or at least 2", opt.max_points));
  if (opt.reference_arm == 0 || opt.reference_arm >= arms || opt.reference_arm < -1)
    throw ConfigError(fmt::format("cost curve reference arm {} must be a treatment arm in [1, {}) or -1 (best arm)",
                                  opt.reference_arm, arms));
  CostCurve cc;
  const PolicyValue ctrl = uniform(0);
  cc.control_revenue = ctrl.revenue, cc.control_cost = ctrl.cost;
  if (arms < 2) {
    cc.note = "one arm only: no treatment to compare with control";
  } else {
    int ref = opt.reference_arm;
    if (ref < 0) {
      double best = -std::numeric_limits<double>::infinity();
      for (int j = 1; j < arms; ++j) {
        const double r = uniform(j).revenue;
        if (r > best) best = r, ref = j;
      }
    }
    const PolicyValue v = uniform(ref);
    cc.reference_arm = ref;
    cc.reference_cost = v.cost - ctrl.cost;
    cc.reference_revenue = v.revenue - ctrl.revenue;
  }
  const int Q = opt.quantiles;
  const double C = cc.reference_cost;
  cc.grid_revenue.assign(Q + 1, 0.0);
  int k = 0;          // next grid level to fill
  double last_r = 0;  // dR at the latest point
  // Full curve length first (for even thinning), then the pass that samples the grid and keeps points.
  sweep([&](double, const PolicyValue&) { ++cc.points; });
  const int64_t keep_every =  // ceil((points - 1) / (max_points - 1)): at most max_points kept, the last one included
      opt.max_points > 1 && cc.points > opt.max_points ? (cc.points + opt.max_points - 3) / (opt.max_points - 1) : 1;
  int64_t idx = 0;
  sweep([&](double lam, const PolicyValue& v) {
    const double dc = v.cost - ctrl.cost, dr = v.revenue - ctrl.revenue;
    last_r = dr;
    while (k <= Q && dc >= C * k / Q) cc.grid_revenue[k++] = dr;
    if (idx % keep_every == 0 || idx == cc.points - 1) {
      cc.lambda.push_back(lam), cc.cost.push_back(dc), cc.revenue.push_back(dr);
    }
    ++idx;
  });
  for (; k <= Q; ++k) cc.grid_revenue[k] = last_r;  // the curve never spends c_k: it keeps its final revenue
  if (cc.note.empty() && !(C > 0))
    cc.note = fmt::format("the reference arm {} does not cost more than control (C* = {}); the area is undefined",
                          cc.reference_arm, C);
  if (cc.note.empty() && !(cc.reference_revenue > 0))
    cc.note = fmt::format("no treatment arm has a higher mean revenue than control (R* = {}); the area is undefined",
                          cc.reference_revenue);
  if (cc.note.empty()) {
    double sum = 0;
    for (double y : cc.grid_revenue) sum += y;
    cc.area = sum / (cc.reference_revenue * (Q + 1));
  } else {
    cc.area = std::numeric_limits<double>::quiet_NaN();
  }
  return cc;
}

}  // namespace dfcl::metrics
