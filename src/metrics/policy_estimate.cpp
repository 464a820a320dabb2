// \brief IPW / SNIPW / DR / SNDR values of fixed policies and their paired differences (see policy_estimate.h).
#include "metrics/policy_estimate.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::max
#include <cmath>      // for std::sqrt

#include "core/error.h"           // for ConfigError, DataError
#include "core/special.h"         // for normal_quantile
#include "metrics/score_table.h"  // for check_scores

namespace dfcl::metrics {

EstimatorKind parse_estimator(const std::string& value, const std::string& key) {
  if (value == "ipw") return EstimatorKind::kIpw;
  if (value == "snipw") return EstimatorKind::kSnipw;
  if (value == "dr") return EstimatorKind::kDr;
  if (value == "sndr") return EstimatorKind::kSndr;
  throw ConfigError(fmt::format(
      "{} is '{}'; use ipw (inverse propensity weighting, the papers' EOM), snipw (its self-normalised form), dr "
      "(doubly robust: an outcome model as control variate) or sndr (DR, self-normalised)",
      key, value));
}

std::string to_string(EstimatorKind k) {
  switch (k) {
    case EstimatorKind::kIpw: return "ipw";
    case EstimatorKind::kSnipw: return "snipw";
    case EstimatorKind::kDr: return "dr";
    case EstimatorKind::kSndr: return "sndr";
  }
  return "ipw";
}

Estimate normal_interval(double value, double se, double level) {
  if (!(level > 0 && level < 1)) throw ConfigError(fmt::format("confidence level {} must lie in (0, 1)", level));
  const double z = normal_quantile(0.5 + level / 2);
  return {value, se, value - z * se, value + z * se};
}

double stratified_se(const RctSample& s, const std::vector<double>& u) {
  const int m = s.m;
  const double N = double(s.n);
  if (s.n < 2) return 0;
  if (!s.empirical) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < s.n; ++i) sum += u[size_t(i)];
    const double mean = sum / N;
    for (int64_t i = 0; i < s.n; ++i) sq += (u[size_t(i)] - mean) * (u[size_t(i)] - mean);
    return std::sqrt(sq / (N - 1) / N);
  }
  std::vector<double> n(size_t(m), 0), sum(size_t(m), 0), sq(size_t(m), 0);
  for (int64_t i = 0; i < s.n; ++i) n[size_t(s.arm[i])] += 1, sum[size_t(s.arm[i])] += u[size_t(i)];
  for (int64_t i = 0; i < s.n; ++i) {
    const size_t j = size_t(s.arm[i]);
    const double d = u[size_t(i)] - sum[j] / n[j];
    sq[j] += d * d;
  }
  double var = 0;
  for (int j = 0; j < m; ++j)
    if (n[size_t(j)] > 1) {
      const double w = n[size_t(j)] / N;
      var += w * w * (sq[size_t(j)] / (n[size_t(j)] - 1)) / n[size_t(j)];
    }
  return std::sqrt(var);
}

PolicyEstimator::PolicyEstimator(const RctSample& s, EstimatorKind kind, const solver::Scores* outcome)
    : s_(s), kind_(kind) {
  validate(s_, "RCT sample");
  inv_p_.resize(size_t(s_.m));
  for (int j = 0; j < s_.m; ++j) inv_p_[size_t(j)] = 1.0 / s_.propensity[size_t(j)];
  if (!needs_outcome_model(kind)) return;
  if (!outcome || outcome->n == 0)
    throw DataError(fmt::format("the {} estimator needs an outcome model's predictions for the trial rows; give "
                                "estimator.outcome_model (crossfit, or a checkpoint that did not train on them) or "
                                "use estimator.kind=ipw",
                                to_string(kind)));
  check_scores(*outcome, "the outcome model's predictions");
  if (outcome->n != s_.n || outcome->m != s_.m)
    throw DataError(fmt::format("the outcome model's predictions are {} x {}, the trial rows {} x {} (rows x arms); "
                                "predict every arm of every trial row",
                                outcome->n, outcome->m, s_.n, s_.m));
  om_ = *outcome;
}

void PolicyEstimator::terms(const uint8_t* policy, std::vector<double>& vr, std::vector<double>& vc) const {
  const int64_t n = s_.n;
  const int m = s_.m;
  vr.assign(size_t(n), 0.0), vc.assign(size_t(n), 0.0);
  const bool dr = om_.n > 0;
  for (int64_t i = 0; i < n; ++i) {
    const int t = s_.arm[i], a = policy[i];
    if (a >= m) throw DataError(fmt::format("policy, row {}: arm {} is outside [0, {})", i, a, m));
    double r = 0, c = 0;
    if (dr) r = om_.r[i * m + a], c = om_.c[i * m + a];
    if (t == a) {
      const double w = inv_p_[size_t(t)];
      r += w * (double(s_.revenue[i]) - (dr ? double(om_.r[i * m + t]) : 0.0));
      c += w * (double(s_.cost[i]) - (dr ? double(om_.c[i * m + t]) : 0.0));
    }
    vr[size_t(i)] = r, vc[size_t(i)] = c;
  }
}

PolicyValue PolicyEstimator::value(const uint8_t* policy, const uint32_t* counts) const {
  const int64_t n = s_.n;
  const int m = s_.m;
  std::vector<double> inv_p = inv_p_;
  if (counts && s_.empirical) {
    const std::vector<double> p = empirical_propensity(s_.arm, n, m, counts);
    for (int j = 0; j < m; ++j) inv_p[size_t(j)] = p[size_t(j)] > 0 ? 1.0 / p[size_t(j)] : 0.0;
  }
  const bool dr = om_.n > 0;
  double total = 0, dm_r = 0, dm_c = 0, cr = 0, cc = 0, mass = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double f = counts ? double(counts[i]) : 1.0;
    if (f == 0) continue;
    total += f;
    const int t = s_.arm[i], a = policy[i];
    if (dr) dm_r += f * om_.r[i * m + a], dm_c += f * om_.c[i * m + a];
    if (t != a) continue;
    const double w = f * inv_p[size_t(t)];
    mass += w;
    cr += w * (double(s_.revenue[i]) - (dr ? double(om_.r[i * m + t]) : 0.0));
    cc += w * (double(s_.cost[i]) - (dr ? double(om_.c[i * m + t]) : 0.0));
  }
  if (total <= 0) throw DataError("no RCT rows: the sample (or its bootstrap replicate) has total weight 0");
  if (self_normalised(kind_)) {
    const double norm = mass > 0 ? total / mass : 0.0;  // (1/N) sum w 1[] -> divide the correction by it
    return {(dm_r + cr * norm) / total, (dm_c + cc * norm) / total};
  }
  return {(dm_r + cr) / total, (dm_c + cc) / total};
}

PolicyValue PolicyEstimator::influence(const uint8_t* policy, std::vector<double>& ur, std::vector<double>& uc) const {
  terms(policy, ur, uc);
  const int64_t n = s_.n;
  const double N = double(n);
  if (!self_normalised(kind_)) {
    double r = 0, c = 0;
    for (int64_t i = 0; i < n; ++i) r += ur[size_t(i)], c += uc[size_t(i)];
    return {r / N, c / N};
  }
  // v_i = dm_i + a_i with a_i the correction; b_i = 1[t = pi] w_i. Value: mean(dm) + mean(a) / mean(b). Delta method:
  // u_i = dm_i + (a_i - R b_i) / mean(b), R = mean(a) / mean(b).
  const int m = s_.m;
  const bool dr = om_.n > 0;
  std::vector<double> b(size_t(n), 0.0);
  double dm_r = 0, dm_c = 0, ar = 0, ac = 0, bs = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int a = policy[i];
    const double dr_i = dr ? double(om_.r[i * m + a]) : 0.0, dc_i = dr ? double(om_.c[i * m + a]) : 0.0;
    if (s_.arm[i] == a) b[size_t(i)] = inv_p_[size_t(a)];
    ur[size_t(i)] -= dr_i, uc[size_t(i)] -= dc_i;  // the correction a_i alone
    dm_r += dr_i, dm_c += dc_i, ar += ur[size_t(i)], ac += uc[size_t(i)], bs += b[size_t(i)];
  }
  const double mb = bs / N, Rr = bs > 0 ? ar / bs : 0.0, Rc = bs > 0 ? ac / bs : 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const int a = policy[i];
    const double dr_i = dr ? double(om_.r[i * m + a]) : 0.0, dc_i = dr ? double(om_.c[i * m + a]) : 0.0;
    ur[size_t(i)] = dr_i + (mb > 0 ? (ur[size_t(i)] - Rr * b[size_t(i)]) / mb : 0.0);
    uc[size_t(i)] = dc_i + (mb > 0 ? (uc[size_t(i)] - Rc * b[size_t(i)]) / mb : 0.0);
  }
  return {dm_r / N + Rr, dm_c / N + Rc};
}

double PolicyEstimator::se_of(const std::vector<double>& u) const { return stratified_se(s_, u); }

PolicyEstimate PolicyEstimator::estimate(const uint8_t* policy, double level) const {
  std::vector<double> ur, uc;
  const PolicyValue v = influence(policy, ur, uc);
  return {normal_interval(v.revenue, se_of(ur), level), normal_interval(v.cost, se_of(uc), level)};
}

PolicyEstimate PolicyEstimator::difference(const uint8_t* a, const uint8_t* b, double level) const {
  std::vector<double> ar, ac, br, bc;
  const PolicyValue va = influence(a, ar, ac), vb = influence(b, br, bc);
  for (size_t i = 0; i < ar.size(); ++i) ar[i] -= br[i], ac[i] -= bc[i];
  return {normal_interval(va.revenue - vb.revenue, se_of(ar), level),
          normal_interval(va.cost - vb.cost, se_of(ac), level)};
}

}  // namespace dfcl::metrics
