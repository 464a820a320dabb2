// \brief EstimatorPath: a scorer's dual policy valued at every lambda at once by IPW, SNIPW, DR or SNDR: what
// IpwPath is for IPW, for any estimator of metrics/policy_estimate.h.
//
// DR's value splits into two paths over lambda:
//   * the correction, (1/N) sum_i 1[t_i = pi_i(lambda)] w_i (y_i - m_i(t_i)): an IpwPath over the residuals;
//   * the direct part, (1/N) sum_i m_i(pi_i(lambda)): per row, one event at each breakpoint of the scorer's hull, where
//     the row moves from hull arm k to k + 1 and its term changes by m_i(h_{k+1}) - m_i(h_k).
// The self-normalised kinds add a third path, the weight mass (1/N) sum_i 1[t_i = pi_i(lambda)] w_i (an IpwPath over
// ones). IPW is the correction path on the raw outcomes alone, so an ipw EstimatorPath is an IpwPath. Queries cost a
// binary search plus at most 256 events per part; a bootstrap replicate re-weights all parts (weigh()).
#pragma once
#include <cstdint>     // for int64_t, uint32_t, uint8_t
#include <functional>  // for std::function
#include <memory>      // for std::unique_ptr
#include <vector>      // for std::vector

#include "metrics/estimate.h"      // for EstimatorKind
#include "metrics/ipw_path.h"      // for IpwPath
#include "metrics/lambda_bound.h"  // for LambdaBound
#include "metrics/policy_value.h"  // for PolicyValue
#include "metrics/rct_sample.h"    // for RctSample
#include "solver/scores.h"         // for Scores

namespace dfcl::metrics {

class EstimatorPath {
 public:
  /// `scores`: the scorer's (they decide the policy; not kept). `outcome`: the outcome model's predictions for every arm
  /// of every row (DR kinds; kept as a view: it must outlive the path, as must the sample's arrays).
  EstimatorPath(const solver::Scores& scores, const RctSample& sample, EstimatorKind kind,
                const solver::Scores* outcome = nullptr, int threads = 0);
  ~EstimatorPath();
  EstimatorPath(EstimatorPath&&) noexcept;

  struct Weights {
    IpwPath::Weights correction, mass;
    const uint32_t* counts = nullptr;
    double total = 0;
    std::vector<double> block_r, block_c;  // the direct part's sums before each block of its events
  };
  Weights weigh(const uint32_t* counts) const;

  PolicyValue at(double lambda) const { return at(lambda, unit_); }
  PolicyValue at(double lambda, const Weights& w) const;
  /// The value of everyone on arm j (under `w`; nullptr = unit weights).
  PolicyValue uniform(int arm, const uint32_t* counts = nullptr) const;
  /// Walks lambda from +inf down to 0 like IpwPath::sweep: fn(+inf, value), then fn(lambda, value) after each distinct
  /// event lambda of any part.
  void sweep(const std::function<void(double lambda, const PolicyValue& v)>& fn) const;

  EstimatorKind kind() const { return kind_; }
  const LambdaBound& bound() const { return correction_->bound(); }
  /// The correction part: for ipw, the IpwPath of the raw outcomes.
  const IpwPath& correction() const { return *correction_; }
  const RctSample& sample() const { return s_; }

 private:
  struct Event {
    double lambda;
    uint32_t row;
    uint8_t from, to;
  };
  void add(const Event& e, const Weights& w, double& r, double& c) const;
  PolicyValue combine(const PolicyValue& corr, const PolicyValue& mass, double dm_r, double dm_c, double total) const;

  RctSample s_;
  EstimatorKind kind_;
  solver::Scores om_{};
  std::vector<float> resid_r_, resid_c_, ones_;
  RctSample resid_s_, ones_s_;
  std::unique_ptr<IpwPath> correction_, mass_;
  std::vector<Event> ev_;  // the direct part: lambda descending, then row
  std::vector<uint8_t> start_;  // each row's arm at lambda = +inf (its cheapest hull arm)
  Weights unit_;
};

}  // namespace dfcl::metrics
