// \brief IPW policy values (see policy_value.h).
#include "metrics/policy_value.h"

#include <fmt/format.h>  // for fmt::format

#include "core/error.h"  // for DataError

namespace dfcl::metrics {
namespace {

template <class ArmOf>
PolicyValue ipw(const RctSample& s, ArmOf arm_of, const uint32_t* counts) {
  std::vector<double> inv_p(s.m);
  for (int j = 0; j < s.m; ++j) inv_p[j] = 1.0 / s.propensity[j];
  double rv = 0, cs = 0, w = 0;
  for (int64_t i = 0; i < s.n; ++i) {
    const double wi = counts ? counts[i] : 1.0;
    w += wi;
    const int t = s.arm[i];
    if (t != arm_of(i) || wi == 0) continue;
    rv += wi * inv_p[t] * s.revenue[i];
    cs += wi * inv_p[t] * s.cost[i];
  }
  if (w <= 0) throw DataError("no RCT rows: the sample (or its bootstrap replicate) has total weight 0");
  return {rv / w, cs / w};
}

void check_propensity(const RctSample& s) {
  if (static_cast<int>(s.propensity.size()) != s.m)
    throw DataError(
        fmt::format("propensity is missing or has {} values for {} arms; IPW needs one probability per arm "
                    "(the trial's rct_propensity or empirical_propensity)",
                    s.propensity.size(), s.m));
  if (s.n <= 0) throw DataError("no RCT rows: the evaluation sample is empty; check the split and source filters");
}

}  // namespace

PolicyValue policy_value(const RctSample& s, const uint8_t* policy, const uint32_t* counts) {
  check_propensity(s);
  return ipw(
      s, [policy](int64_t i) { return int(policy[i]); }, counts);
}

PolicyValue policy_value(const RctSample& s, const std::vector<uint8_t>& policy) {
  if (static_cast<int64_t>(policy.size()) != s.n)
    throw DataError(fmt::format("length mismatch: the policy has {} rows but the sample has {}; give one arm per row",
                                policy.size(), s.n));
  for (size_t i = 0; i < policy.size(); ++i)
    if (policy[i] >= s.m)
      throw DataError(fmt::format("policy, row {}: arm {} is outside [0, {}); fix the allocation", i, policy[i], s.m));
  return policy_value(s, policy.data());
}

PolicyValue uniform_policy_value(const RctSample& s, int arm, const uint32_t* counts) {
  check_propensity(s);
  if (arm < 0 || arm >= s.m) throw DataError(fmt::format("arm {} is outside [0, {})", arm, s.m));
  return ipw(
      s, [arm](int64_t) { return arm; }, counts);
}

}  // namespace dfcl::metrics
