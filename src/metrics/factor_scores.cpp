// \brief factor_scores and rct_step_costs (see factor_scores.h).
#include "metrics/factor_scores.h"

#include <fmt/format.h>  // for fmt::format

#include <cmath>  // for std::isfinite

#include "core/error.h"  // for DataError

namespace dfcl::metrics {

ScoreTable factor_scores(const float* theta, int64_t n, int steps, const std::vector<double>& step_cost) {
  if (steps < 1) throw DataError(fmt::format("factor scores: {} steps per user; need M - 1 >= 1", steps));
  if (static_cast<int>(step_cost.size()) != steps)
    throw DataError(fmt::format("factor scores: {} step costs for {} steps", step_cost.size(), steps));
  for (int k = 0; k < steps; ++k)
    if (!(step_cost[k] > 0) || !std::isfinite(step_cost[k]))
      throw DataError(fmt::format("factor scores: step {} costs {}; every d_k must be a finite number > 0", k + 1,
                                  step_cost[k]));
  if (n > 0 && theta == nullptr) throw DataError("factor scores: the factor array is missing (null)");
  const int m = steps + 1;
  ScoreTable t;
  t.n = n, t.m = m;
  t.r.resize(size_t(n) * m);
  t.c.resize(size_t(n) * m);
  std::vector<float> cum_cost(m, 0.0f);
  double acc = 0;
  for (int k = 0; k < steps; ++k) acc += step_cost[k], cum_cost[k + 1] = float(acc);
  for (int64_t i = 0; i < n; ++i) {
    double r = 0;
    float* ri = &t.r[size_t(i) * m];
    float* ci = &t.c[size_t(i) * m];
    ri[0] = 0, ci[0] = 0;
    for (int k = 0; k < steps; ++k) {
      const float th = theta[i * steps + k];
      if (!std::isfinite(th))
        throw DataError(fmt::format("factor scores: user {}, step {}: factor {} is not finite", i, k + 1, th));
      r += double(th) * step_cost[k];
      ri[k + 1] = float(r), ci[k + 1] = cum_cost[k + 1];
    }
  }
  return t;
}

std::vector<double> rct_step_costs(const RctSample& s) {
  if (s.m < 2) throw DataError(fmt::format("step costs: {} arms; need control plus at least one treatment", s.m));
  if (s.n > 0 && (s.arm == nullptr || s.cost == nullptr))
    throw DataError("step costs: the sample's arm or cost column is missing");
  std::vector<double> sum(s.m, 0.0), count(s.m, 0.0);
  for (int64_t i = 0; i < s.n; ++i) {
    const int32_t a = s.arm[i];
    if (a < 0 || a >= s.m) throw DataError(fmt::format("step costs: row {} has arm {} outside [0, {})", i, a, s.m));
    sum[a] += s.cost[i], count[a] += 1;
  }
  for (int j = 0; j < s.m; ++j)
    if (count[j] == 0) throw DataError(fmt::format("step costs: arm {} has no rows in the sample", j));
  std::vector<double> d(s.m - 1);
  for (int k = 1; k < s.m; ++k) {
    d[k - 1] = sum[k] / count[k] - sum[k - 1] / count[k - 1];
    if (!(d[k - 1] > 0))
      throw DataError(fmt::format("step costs: step {} (arm {} -> {}) has mean incremental cost {}; the factor "
                                  "model needs arms ordered by cost with d_k > 0",
                                  k, k - 1, k, d[k - 1]));
  }
  return d;
}

}  // namespace dfcl::metrics
