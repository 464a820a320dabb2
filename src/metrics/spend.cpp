// \brief Spend: budget calibration names, the IPW spend of a policy with its CI, the verdict, cost calibration.
#include "metrics/spend.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::max, std::sort
#include <utility>    // for std::pair
#include <cmath>      // for std::sqrt, std::log, std::fabs, std::exp, NAN

#include "core/error.h"    // for ConfigError, DataError
#include "core/rng.h"      // for mix64
#include "core/special.h"  // for normal_quantile
#include "metrics/eom.h"   // for eom_at
#include "solver/mckp.h"   // for DualPath, policy_at

namespace dfcl::metrics {

BudgetCalibration parse_budget_calibration(const std::string& value, bool have_trial, const std::string& key) {
  if (value == "predicted") return BudgetCalibration::kPredicted;
  if (value == "trial") return BudgetCalibration::kTrial;
  if (value == "auto") return have_trial ? BudgetCalibration::kTrial : BudgetCalibration::kPredicted;
  throw ConfigError(
      fmt::format("{} is '{}'; use trial (lambda from the IPW estimate of the true spend on trial rows), "
                  "predicted (lambda from the scorer's own predicted costs) or auto (trial when there "
                  "are trial rows)",
                  key, value));
}

std::string to_string(BudgetCalibration c) { return c == BudgetCalibration::kTrial ? "trial" : "predicted"; }

Estimate ipw_spend(const RctSample& s, const uint8_t* policy, double level) {
  if (!(level > 0 && level < 1)) throw ConfigError(fmt::format("confidence level {} must lie in (0, 1)", level));
  const int m = s.m;
  if (static_cast<int>(s.propensity.size()) != m)
    throw DataError("ipw_spend: the sample has no propensity per arm; pass rct_propensity or the arm shares");
  Estimate e;
  if (s.n == 0) return e;
  // Per arm: count, sum and sum of squares of x_i = c_i 1[pi_i = t_i].
  std::vector<double> n(size_t(m), 0), sum(size_t(m), 0), sq(size_t(m), 0);
  double all_sum = 0, all_sq = 0;  // of z_i = x_i / p_{t_i} (design propensities)
  for (int64_t i = 0; i < s.n; ++i) {
    const int t = s.arm[i];
    if (t < 0 || t >= m || policy[i] >= m)
      throw DataError(fmt::format("ipw_spend: row {} has arm {} and policy arm {}; both must lie in [0, {})", i, t,
                                  int(policy[i]), m));
    const double x = policy[i] == t ? double(s.cost[i]) : 0.0, z = x / s.propensity[size_t(t)];
    n[size_t(t)] += 1, sum[size_t(t)] += x, sq[size_t(t)] += x * x;
    all_sum += z, all_sq += z * z;
  }
  const double N = double(s.n);
  double var = 0;
  if (s.empirical) {  // sum_j (1/N_j) sum_{i in j} x_i = sum_j p_j-weighted arm means: stratified variance
    for (int j = 0; j < m; ++j) {
      if (n[size_t(j)] == 0) continue;
      const double mean = sum[size_t(j)] / n[size_t(j)];
      e.value += sum[size_t(j)] / N / s.propensity[size_t(j)];
      if (n[size_t(j)] > 1) {
        const double v = std::max(0.0, sq[size_t(j)] - n[size_t(j)] * mean * mean) / (n[size_t(j)] - 1);
        const double w = n[size_t(j)] / N / s.propensity[size_t(j)];  // 1 with the sample's own shares
        var += w * w * v / n[size_t(j)];
      }
    }
  } else {
    e.value = all_sum / N;
    if (s.n > 1) var = std::max(0.0, all_sq - N * e.value * e.value) / (N - 1) / N;
  }
  e.se = std::sqrt(var);
  const double z = normal_quantile(0.5 + level / 2);
  e.lo = e.value - z * e.se, e.hi = e.value + z * e.se;
  return e;
}

double predicted_spend(const solver::Scores& scores, const uint8_t* policy) {
  double total = 0;
  for (int64_t i = 0; i < scores.n; ++i) total += scores.c[i * scores.m + policy[i]];
  return scores.n > 0 ? total / double(scores.n) : 0.0;
}

SpendVerdict judge_spend(const Estimate& spend, double budget) {
  if (spend.lo > budget) return SpendVerdict::kOverspends;
  if (spend.hi < budget) return SpendVerdict::kUnderspends;
  return SpendVerdict::kMeets;
}

std::string to_string(SpendVerdict v) {
  switch (v) {
    case SpendVerdict::kMeets:
      return "meets";
    case SpendVerdict::kOverspends:
      return "OVERSPENDS";
    case SpendVerdict::kUnderspends:
      return "underspends";
  }
  return "meets";
}

double predicted_lambda(const solver::Scores& scores, double budget, bool* reached, int threads) {
  const solver::DualPath path(scores, threads);
  const double total = budget * double(scores.n);
  solver::SolveOptions o;
  o.clamp_below_min = true;
  const solver::Allocation a = path.solve(total, o);
  if (reached) *reached = !a.clamped;
  return a.lambda;
}

double trial_lambda(const IpwPath& calibration, double budget, bool* reached) {
  const EomPoint p = eom_at(calibration, budget);
  if (reached) *reached = p.reached();
  return p.lambda;
}

double tie_hash(int64_t row) { return double(mix64(uint64_t(row) ^ 0x7135D0A1C3B2E4F5ull) >> 11) * 0x1.0p-53; }

TrialCalibration trial_calibrate(const solver::Scores& trial_scores, const IpwPath& calibration, double budget) {
  const RctSample& s = calibration.sample();
  if (trial_scores.n != s.n || trial_scores.m != s.m)
    throw DataError(fmt::format("trial_calibrate: scores are {} x {}, the trial rows {} x {}", trial_scores.n,
                                trial_scores.m, s.n, s.m));
  return trial_calibrate(trial_scores, eom_at(calibration, budget), budget,
                         [&](const uint8_t* policy) { return ipw_spend(s, policy).value; });
}

TrialCalibration trial_calibrate(const solver::Scores& trial_scores, const EomPoint& p, double budget,
                                 const std::function<double(const uint8_t*)>& spend_of) {
  const int64_t n = trial_scores.n;
  TrialCalibration c;
  c.point = p;
  c.lambda = p.lambda, c.reached = p.reached();
  if (!p.reached()) return c;  // no lambda spends as much, or every lambda spends more
  // The deployed decisions are solver::policy_at's, which compares r - lambda c in double where the paths compare
  // lambda with the exact breakpoints: rows whose breakpoints agree to rounding (a group the scorer cannot tell apart)
  // fall on one side together. Check what they spend; if it misses the budget, bracket the jump with the deployed rule
  // and split the group.
  std::vector<uint8_t> hi, lo;
  solver::policy_at(trial_scores, c.lambda, hi);
  const double tol = 1e-4 * budget;
  if (std::fabs(spend_of(hi.data()) - budget) <= tol) return c;
  const double l_hi = c.lambda * (1 + 1e-9) + 1e-300;
  const double l_lo = (p.stepped ? p.lambda_over : c.lambda) * (1 - 1e-9);
  solver::policy_at(trial_scores, l_hi, hi);
  solver::policy_at(trial_scores, l_lo, lo);
  if (!(spend_of(hi.data()) <= budget && spend_of(lo.data()) > budget)) return c;
  c.lambda = l_hi, c.lambda_over = l_lo;
  std::vector<std::pair<double, int64_t>> tied;  // (hash, row) of the rows that switch in the jump
  for (int64_t i = 0; i < n; ++i)
    if (hi[size_t(i)] != lo[size_t(i)]) tied.emplace_back(tie_hash(i), i);
  std::sort(tied.begin(), tied.end());
  c.tied_trial_rows = int64_t(tied.size());
  // The first k tied rows (by hash) on their costlier arm: the largest k whose estimated spend stays within b.
  std::vector<uint8_t> pol;
  auto spend_with = [&](size_t k) {
    pol = hi;
    for (size_t q = 0; q < k; ++q) pol[size_t(tied[q].second)] = lo[size_t(tied[q].second)];
    return spend_of(pol.data());
  };
  size_t a = 0, e = tied.size();  // spend(a) <= budget < spend(e): the two sides of the jump
  while (e - a > 1) {
    const size_t mid = a + (e - a) / 2;
    (spend_with(mid) <= budget ? a : e) = mid;
  }
  c.fill = a == 0 ? 0.0 : tied[a].first;  // rows with hash < fill: exactly the first a (a < e <= size)
  c.reached = true;
  return c;
}

void calibrated_policy(const solver::Scores& scores, const TrialCalibration& c, std::vector<uint8_t>& arm) {
  solver::policy_at(scores, c.lambda, arm);
  if (!(c.fill > 0)) return;
  std::vector<uint8_t> lo;
  solver::policy_at(scores, c.lambda_over, lo);
  for (int64_t i = 0; i < scores.n; ++i)
    if (arm[size_t(i)] != lo[size_t(i)] && tie_hash(i) < c.fill) arm[size_t(i)] = lo[size_t(i)];
}

BudgetDecision judge_at(const solver::Scores& scores, const IpwPath& judged, double budget, double lambda,
                        double level) {
  std::vector<uint8_t> policy;
  solver::policy_at(scores, lambda, policy);
  return judge_policy(scores, judged, budget, lambda, policy, level);
}

BudgetDecision judge_policy(const solver::Scores& scores, const IpwPath& judged, double budget, double lambda,
                            const std::vector<uint8_t>& policy, double level) {
  const RctSample& s = judged.sample();
  if (scores.n != s.n || scores.m != s.m || int64_t(policy.size()) != s.n)
    throw DataError(fmt::format("judge_policy: scores are {} x {} with {} decisions, the trial rows {} x {}", scores.n,
                                scores.m, policy.size(), s.n, s.m));
  BudgetDecision d;
  d.budget = budget, d.lambda = lambda;
  d.predicted_spend = predicted_spend(scores, policy.data());
  // The decisions as deployed (solver::policy_at). IpwPath::at(lambda) compares lambda with the hull breakpoints
  // instead; a bisection's lambda sits on some row's breakpoint, where the two can put that one row on either side.
  d.ipw = policy_value(s, policy.data());
  d.spend = ipw_spend(s, policy.data(), level);
  d.verdict = judge_spend(d.spend, budget);
  return d;
}

std::vector<ArmCostCalibration> cost_calibration(const solver::Scores& scores, const RctSample& s) {
  if (scores.n != s.n || scores.m != s.m)
    throw DataError(
        fmt::format("cost_calibration: scores are {} x {}, the trial rows {} x {}", scores.n, scores.m, s.n, s.m));
  const int m = s.m;
  std::vector<double> pred(size_t(m), 0), obs(size_t(m), 0), rows(size_t(m), 0);
  for (int64_t i = 0; i < s.n; ++i) {
    for (int j = 0; j < m; ++j) pred[size_t(j)] += scores.c[i * m + j];
    obs[size_t(s.arm[i])] += s.cost[i], rows[size_t(s.arm[i])] += 1;
  }
  std::vector<ArmCostCalibration> out;
  for (int j = 0; j < m; ++j) {
    ArmCostCalibration a;
    a.arm = j;
    a.predicted = s.n > 0 ? pred[size_t(j)] / double(s.n) : 0;
    a.observed = rows[size_t(j)] > 0 ? obs[size_t(j)] / rows[size_t(j)] : NAN;
    a.ratio = a.observed > 0 ? a.predicted / a.observed : NAN;
    out.push_back(a);
  }
  return out;
}

double worst_cost_factor(const std::vector<ArmCostCalibration>& c) {
  double worst = 0;
  for (const auto& a : c)
    if (a.observed > 0 && a.ratio > 0)
      worst = std::max(worst, std::fabs(std::log(a.ratio)));
    else if (a.observed > 0)
      return INFINITY;  // predicts nothing (or less) for an arm that costs something
  return std::exp(worst);
}

}  // namespace dfcl::metrics
