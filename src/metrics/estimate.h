// \brief A per-capita estimate with a two-sided normal confidence interval, and the names of the policy-value
// estimators (docs/metrics.md §13): IPW, its self-normalised form, doubly robust, and its self-normalised form.
#pragma once
#include <string>  // for std::string

namespace dfcl::metrics {

/// A per-capita estimate with a two-sided normal confidence interval.
struct Estimate {
  double value = 0, se = 0, lo = 0, hi = 0;
};

/// How a policy's revenue and spend are estimated on trial rows (metrics/policy_estimate.h).
///   ipw:   (1/N) sum_i 1[t_i = pi_i] y_i / p_{t_i}                                  (Horvitz-Thompson)
///   snipw: the same divided by (1/N) sum_i 1[t_i = pi_i] / p_{t_i}                  (Hajek)
///   dr:    (1/N) sum_i m_i(pi_i) + 1[t_i = pi_i] (y_i - m_i(t_i)) / p_{t_i}          (doubly robust; m an outcome model)
///   sndr:  DR with its correction term self-normalised like snipw
enum class EstimatorKind { kIpw, kSnipw, kDr, kSndr };

/// "ipw", "snipw", "dr", "sndr"; ConfigError naming `key` otherwise.
EstimatorKind parse_estimator(const std::string& value, const std::string& key);
std::string to_string(EstimatorKind k);
/// True for the kinds that need an outcome model (dr, sndr).
inline bool needs_outcome_model(EstimatorKind k) { return k == EstimatorKind::kDr || k == EstimatorKind::kSndr; }
inline bool self_normalised(EstimatorKind k) { return k == EstimatorKind::kSnipw || k == EstimatorKind::kSndr; }

/// value +- z_{(1+level)/2} se.
Estimate normal_interval(double value, double se, double level);

}  // namespace dfcl::metrics
