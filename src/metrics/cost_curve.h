// \brief Multi-arm cost curve: incremental revenue against incremental cost of a scorer's dual policy as lambda sweeps
// from +inf to 0, both IPW-estimated on RCT rows relative to "everyone gets control", and its normalised area.
//
//   dC(lambda) = cbar(pi(lambda)) - cbar(all control),   dR(lambda) = rbar(pi(lambda)) - rbar(all control)
// Reference point: the single best arm j* (largest IPW mean revenue among treatments, or a chosen arm) given to
// everyone: (C*, R*) = (cbar(all j*) - cbar(all control), rbar(all j*) - rbar(all control)). On the grid
// c_k = k C* / Q (k = 0..Q), Y_k is dR at the first curve point (in sweep order) with dC >= c_k, or dR at the end of
// the curve (lambda = 0) if the curve never spends c_k. Area = sum_k Y_k / (R* (Q + 1)): targeting random users with
// j* gives about 0.5; larger is better. For two arms, with every predicted uplift and cost uplift positive, the
// curve's points are AUCC's (x, y) (docs/metrics.md).
#pragma once
#include <cstdint>  // for int64_t
#include <functional>  // for std::function
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "metrics/ipw_path.h"  // for IpwPath

namespace dfcl::metrics {

struct CostCurveOptions {
  int quantiles = 200;        // Q
  int64_t max_points = 1000;  // points kept for plotting (evenly thinned; both ends kept); 0 = all
  int reference_arm = -1;     // j*; -1 = the treatment arm with the largest IPW mean revenue
};

struct CostCurve {
  // The curve, thinned: lambda (+inf first), incremental cost and revenue per capita.
  std::vector<double> lambda, cost, revenue;
  int64_t points = 0;                            // distinct policies on the full curve
  double control_revenue = 0, control_cost = 0;  // rbar, cbar of everyone on control
  int reference_arm = 0;
  double reference_cost = 0, reference_revenue = 0;  // (C*, R*)
  std::vector<double> grid_revenue;                  // Y_0 .. Y_Q
  double area = 0;                                   // NaN when R* <= 0 or C* <= 0 (see note)
  std::string note;                                  // why the area is undefined, if it is
};

/// Throws ConfigError for quantiles < 1 or a reference arm out of range.
CostCurve cost_curve(const IpwPath& path, const CostCurveOptions& opt = {});

/// The curve from its two ingredients, for any way of computing them (one process here; metrics/distributed.h
/// across ranks): `uniform(j)`, the IPW value of everyone on arm j, and `sweep(fn)`, which calls fn(lambda, value)
/// for each policy of the dual path from lambda = +inf down (it is called twice: to count, then to sample).
using PolicySweep = std::function<void(const std::function<void(double, const PolicyValue&)>&)>;
CostCurve cost_curve_from(int arms, const std::function<PolicyValue(int)>& uniform, const PolicySweep& sweep,
                          const CostCurveOptions& opt);

}  // namespace dfcl::metrics
