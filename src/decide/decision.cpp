// \brief TrialView and Decider: lambda for a budget, the decisions, and their estimated spend and revenue.
#include "decide/decision.h"

#include <fmt/format.h>  // for fmt::format

#include <cmath>  // for NAN, std::ceil, std::isfinite

#include "core/error.h"   // for ConfigError
#include "metrics/eom.h"  // for eom_bisect

namespace dfcl::decide {

TrialView::TrialView(const solver::Scores& scores, const metrics::RctSample& sample, metrics::EstimatorKind kind,
                     const solver::Scores* outcome, int threads)
    : scores_(scores), s_(sample), kind_(kind) {
  path_ = std::make_unique<metrics::EstimatorPath>(scores, s_, kind, outcome, threads);
  if (kind == metrics::EstimatorKind::kIpw) {
    ipw_ = &path_->correction();
  } else {
    own_ipw_ = std::make_unique<metrics::IpwPath>(scores, s_, threads);
    ipw_ = own_ipw_.get();
  }
  est_ = std::make_unique<metrics::PolicyEstimator>(s_, kind, outcome);
  ipw_est_ = std::make_unique<metrics::PolicyEstimator>(s_, metrics::EstimatorKind::kIpw);
}

TrialView::~TrialView() = default;
TrialView::TrialView(TrialView&&) noexcept = default;

Decider::Decider(const solver::Scores& decided, const TrialView* calibration, const TrialView* judged,
                 const DecisionOptions& options)
    : decided_(decided), cal_(calibration), judged_(judged), o_(options) {
  if (o_.calibration == metrics::BudgetCalibration::kTrial && !cal_)
    throw ConfigError("budget_calibration = trial needs trial rows to calibrate on; give them, or use "
                      "budget_calibration=predicted");
}

Decider::~Decider() = default;

void decisions_at(const solver::Scores& scores, const Decision& d, std::vector<uint8_t>& arm) {
  metrics::calibrated_policy(scores, d.tc, arm);
}

Decision Decider::at(double b) const { return decide(b, b * double(decided_.n)); }

Decision Decider::at_total(double total) const { return decide(total / double(decided_.n), total); }

SpendPrecision spend_precision(const metrics::Estimate& spend, double budget, int64_t rows, double target) {
  SpendPrecision p;
  p.target = target;
  p.half_width = (spend.hi - spend.lo) / 2 / budget;
  const double ratio = p.half_width / target;
  p.rows_for_target = std::isfinite(ratio) ? int64_t(std::ceil(double(rows) * ratio * ratio)) : 0;
  return p;
}

Decision Decider::decide(double b, double total) const {
  Decision d;
  d.budget = b;
  if (o_.calibration == metrics::BudgetCalibration::kPredicted) {
    if (o_.bisection) {
      d.alloc = solver::solve_bisection(decided_, total);
    } else {
      if (!dual_) dual_ = std::make_unique<solver::DualPath>(decided_, o_.threads);
      d.alloc = dual_->solve(total, o_.solve);
    }
    d.lambda = d.alloc.lambda, d.reached = !d.alloc.clamped;
    d.tc.lambda = d.lambda, d.tc.reached = d.reached;  // no tie split: decisions_at is policy_at(lambda)
  } else {
    const TrialView& c = *cal_;
    if (o_.calibrate_by_estimator && c.kind() != metrics::EstimatorKind::kIpw) {
      const metrics::EstimatorPath& p = c.path();
      const metrics::EomPoint point =
          metrics::eom_bisect(b, p.bound().hi, {}, [&](double lam) { return p.at(lam); });
      d.tc = metrics::trial_calibrate(c.scores(), point, b,
                                      [&](const uint8_t* pol) { return c.estimator().value(pol).cost; });
    } else {
      d.tc = metrics::trial_calibrate(c.scores(), c.ipw(), b);
    }
    d.lambda = d.tc.lambda, d.reached = d.tc.reached;
    d.alloc.budget = total, d.alloc.lambda = d.lambda;
    metrics::calibrated_policy(decided_, d.tc, d.alloc.arm);
    for (int64_t i = 0; i < decided_.n; ++i)
      d.alloc.spend += decided_.c[i * decided_.m + d.alloc.arm[size_t(i)]],
          d.alloc.revenue += decided_.r[i * decided_.m + d.alloc.arm[size_t(i)]];
    d.alloc.lp_bound = d.alloc.gap_bound = NAN;  // no knapsack on predicted costs was solved
    if (!d.reached) d.alloc.note = fmt::format("no lambda brings the trial's estimated spend to {:.6g} per user", b);
  }
  if (!judged_) return d;
  const TrialView& j = *judged_;
  d.judged = true;
  if (j.scores().r == decided_.r && j.scores().n == decided_.n) {
    d.judged_arms = d.alloc.arm;
  } else if (o_.calibration == metrics::BudgetCalibration::kPredicted) {
    solver::policy_at(j.scores(), d.lambda, d.judged_arms);
  } else {
    metrics::calibrated_policy(j.scores(), d.tc, d.judged_arms);
  }
  d.ipw = metrics::judge_policy(j.scores(), j.ipw(), b, d.lambda, d.judged_arms, o_.level);
  d.ipw.reached = d.reached;
  d.estimate = j.estimator().estimate(d.judged_arms.data(), o_.level);
  if (j.kind() == metrics::EstimatorKind::kIpw) d.estimate.spend = d.ipw.spend;  // metrics::ipw_spend, the same terms
  d.verdict = metrics::judge_spend(d.estimate.spend, b);
  return d;
}

}  // namespace dfcl::decide
