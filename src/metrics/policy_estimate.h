// \brief Revenue and spend of a fixed policy on trial rows under IPW, SNIPW, DR or SNDR, with standard errors, and the
// paired difference of two policies on the same rows (docs/metrics.md §13).
//
// Per row i (arm t_i, outcome y_i; pi_i the policy's arm; w_i = 1/p_{t_i}; m_i(j) the outcome model's prediction of
// arm j for row i, 0 for the IPW kinds):
//     v_i = m_i(pi_i) + 1[t_i = pi_i] w_i (y_i - m_i(t_i))        value = (1/N) sum_i v_i
// The self-normalised kinds divide the correction sum by (1/N) sum_i 1[t_i = pi_i] w_i. DR is unbiased for any outcome
// model that did not see these rows' outcomes (the propensities are known), and its variance is that of the residual
// y - m, not of y: the better m predicts, the smaller. Two policies that pick the same arm for a row have the same v_i,
// so the row drops out of their difference; that pairing is where most of the variance goes when most of the outcome
// is noise no feature explains.
//
// Standard errors: with the sample's own arm shares as propensities (RctSample::empirical) the estimate is a stratified
// mean over arms, variance sum_j (N_j/N)^2 s_j^2 / N_j of the per-row influence terms; with design propensities a plain
// mean, variance s^2 / N. Self-normalised kinds use the delta method's influence terms.
#pragma once
#include <cstdint>  // for int64_t, uint8_t, uint32_t
#include <vector>   // for std::vector

#include "metrics/estimate.h"      // for Estimate, EstimatorKind
#include "metrics/policy_value.h"  // for PolicyValue
#include "metrics/rct_sample.h"    // for RctSample
#include "solver/scores.h"         // for Scores

namespace dfcl::metrics {

/// Revenue and spend of a policy, each with its CI.
struct PolicyEstimate {
  Estimate revenue, spend;
};

class PolicyEstimator {
 public:
  /// `outcome` (the DR kinds; ignored by ipw and snipw): the outcome model's r_hat and c_hat for every arm of every row
  /// of `s`, from a model that never saw these rows' outcomes (decide/outcome_model.h cross-fits one). The sample's and
  /// the outcome's arrays must outlive the estimator. Throws DataError for a missing or misshapen outcome model.
  PolicyEstimator(const RctSample& s, EstimatorKind kind, const solver::Scores* outcome = nullptr);

  EstimatorKind kind() const { return kind_; }
  const RctSample& sample() const { return s_; }
  bool has_outcome_model() const { return om_.n > 0; }

  /// Per-capita value of `policy` (one arm per row), with row i counted counts[i] times (nullptr: once); with an
  /// empirical sample the arm shares are recomputed from the counts (a bootstrap replicate of the whole procedure).
  PolicyValue value(const uint8_t* policy, const uint32_t* counts = nullptr) const;
  /// The value with normal CIs at `level`.
  PolicyEstimate estimate(const uint8_t* policy, double level = 0.95) const;
  /// value(a) - value(b) on the same rows, with the CI of the paired difference.
  PolicyEstimate difference(const uint8_t* a, const uint8_t* b, double level = 0.95) const;
  /// Per-row terms v_i of revenue and cost (their mean is value(policy) for the unnormalised kinds).
  void terms(const uint8_t* policy, std::vector<double>& vr, std::vector<double>& vc) const;

 private:
  // Influence terms of revenue and cost (the rows' contributions to the estimate's variance) and the value.
  PolicyValue influence(const uint8_t* policy, std::vector<double>& ur, std::vector<double>& uc) const;
  double se_of(const std::vector<double>& u) const;

  RctSample s_;
  EstimatorKind kind_;
  solver::Scores om_{};
  std::vector<double> inv_p_;
};

/// The standard error of a mean of per-row terms `u` over the rows of `s`: stratified by arm with empirical
/// propensities, plain otherwise (the rule PolicyEstimator uses; exposed for the paired bootstrap's checks).
double stratified_se(const RctSample& s, const std::vector<double>& u);

}  // namespace dfcl::metrics
