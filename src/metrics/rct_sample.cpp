// \brief RCT sample checks and empirical propensities (see rct_sample.h).
#include "metrics/rct_sample.h"

#include <fmt/format.h>  // for fmt::format

#include <cmath>  // for std::isfinite, std::abs

#include "core/error.h"  // for DataError

namespace dfcl::metrics {

std::vector<double> empirical_propensity(const int32_t* arm, int64_t n, int m, const uint32_t* counts) {
  if (n <= 0)
    throw DataError(
        "no RCT rows: the evaluation sample is empty; check the split and source filters "
        "(metrics need randomised-trial rows, source = 0)");
  std::vector<double> w(m, 0.0);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (arm[i] < 0 || arm[i] >= m)
      throw DataError(
          fmt::format("field treatment, row {}: arm id {} is outside [0, {}); fix the treatment column", i, arm[i], m));
    const double c = counts ? counts[i] : 1.0;
    w[arm[i]] += c;
    total += c;
  }
  if (total <= 0) throw DataError("no RCT rows: every row has weight 0");
  for (double& v : w) v /= total;
  return w;
}

RctSample make_sample(const std::vector<int32_t>& arm, const std::vector<float>& revenue,
                      const std::vector<float>& cost, int m, std::vector<double> propensity) {
  if (revenue.size() != arm.size())
    throw DataError(
        fmt::format("length mismatch: 'revenue' has {} rows but 'arm' has {}; every column needs one value "
                    "per row",
                    revenue.size(), arm.size()));
  if (cost.size() != arm.size())
    throw DataError(
        fmt::format("length mismatch: 'cost' has {} rows but 'arm' has {}; every column needs one value "
                    "per row",
                    cost.size(), arm.size()));
  RctSample s;
  s.n = static_cast<int64_t>(arm.size());
  s.m = m;
  s.arm = arm.data();
  s.revenue = revenue.data();
  s.cost = cost.data();
  if (propensity.empty()) {
    s.propensity = empirical_propensity(s.arm, s.n, m);
    s.empirical = true;
  } else {
    s.propensity = std::move(propensity);
  }
  return s;
}

void validate(const RctSample& s, const std::string& where) {
  if (s.n <= 0)
    throw DataError(
        fmt::format("{}: no RCT rows; metrics need randomised-trial rows (source = 0): check the split and "
                    "source filters, or evaluate a dataset with a trial",
                    where));
  if (s.m < 1) throw DataError(fmt::format("{}: {} arms; need at least the control arm", where, s.m));
  if (!s.arm || !s.revenue || !s.cost)
    throw DataError(fmt::format("{}: the {} column is missing (null); pass arm, revenue and cost for every row", where,
                                !s.arm       ? "arm"
                                : !s.revenue ? "revenue"
                                             : "cost"));
  if (s.propensity.empty())
    throw DataError(
        fmt::format("{}: propensity is missing: IPW needs one probability per arm ({} arms); pass the "
                    "trial's rct_propensity or the empirical arm shares (empirical_propensity)",
                    where, s.m));
  if (static_cast<int>(s.propensity.size()) != s.m)
    throw DataError(fmt::format("{}: propensity has {} values but the data has {} arms; give one per arm", where,
                                s.propensity.size(), s.m));
  double sum = 0;
  for (int j = 0; j < s.m; ++j) {
    const double p = s.propensity[j];
    if (p == 0 && s.empirical)
      throw DataError(
          fmt::format("{}: arm {} has no rows in the sample, so its empirical propensity is 0; every arm "
                      "needs trial rows (evaluate a larger split)",
                      where, j));
    if (!(p > 0 && p <= 1))
      throw DataError(fmt::format("{}: propensity of arm {} is {}; an RCT propensity must lie in (0, 1]", where, j, p));
    sum += p;
  }
  if (std::abs(sum - 1) > 1e-6)
    throw DataError(
        fmt::format("{}: the propensities sum to {}, not 1; give the trial's arm probabilities", where, sum));
  for (int64_t i = 0; i < s.n; ++i) {
    if (s.arm[i] < 0 || s.arm[i] >= s.m)
      throw DataError(fmt::format("{}: field treatment, row {}: arm id {} is outside [0, {}); fix the treatment column",
                                  where, i, s.arm[i], s.m));
    if (!std::isfinite(s.revenue[i]))
      throw DataError(fmt::format("{}: field revenue, row {}: value is {}; replace missing values upstream", where, i,
                                  s.revenue[i]));
    if (!std::isfinite(s.cost[i]))
      throw DataError(
          fmt::format("{}: field cost, row {}: value is {}; replace missing values upstream", where, i, s.cost[i]));
  }
}

}  // namespace dfcl::metrics
