// \brief What decisions spend: the IPW spend and its CI against hand computation and against a coverage simulation,
// the verdict, the lambda of each budget calibration, cost calibration per arm.
#include <gtest/gtest.h>  // for TEST

#include <cmath>   // for std::sqrt
#include <random>  // for std::mt19937_64

#include "core/error.h"         // for ConfigError, DataError
#include "metrics/eom.h"        // for eom_at
#include "metrics/ipw_path.h"   // for IpwPath
#include "metrics/oracle.h"     // for true_value
#include "metrics/score_table.h"  // for ScoreTable
#include "metrics/spend.h"      // for ipw_spend, judge_spend, predicted_lambda, trial_lambda, cost_calibration
#include "metrics/synthetic.h"  // for Trial
#include "solver/mckp.h"        // for policy_at

namespace dfcl::metrics {
namespace {

// Six rows, two arms: arm, cost, policy.
struct Tiny {
  std::vector<int32_t> arm{0, 1, 1, 0, 1, 0};
  std::vector<float> rev{1, 2, 3, 4, 5, 6}, cost{0, 2, 4, 0.5f, 3, 0};
  std::vector<uint8_t> policy{1, 1, 0, 0, 1, 1};
  RctSample sample(bool empirical) const {
    RctSample s;
    s.n = 6, s.m = 2, s.arm = arm.data(), s.revenue = rev.data(), s.cost = cost.data();
    s.empirical = empirical;
    s.propensity = empirical ? std::vector<double>{0.5, 0.5} : std::vector<double>{0.4, 0.6};
    return s;
  }
};

TEST(Spend, DesignPropensitiesGiveAPlainMeanOfTheIpwTermsAndItsStandardError) {
  const Tiny t;
  // Matched rows: 1 (arm 1, cost 2), 3 (arm 0, cost 0.5), 4 (arm 1, cost 3). z = c / p_t: 2/0.6, 0.5/0.4, 3/0.6.
  const double z[6] = {0, 2 / 0.6, 0, 0.5 / 0.4, 3 / 0.6, 0};
  double mean = 0, var = 0;
  for (double v : z) mean += v / 6;
  for (double v : z) var += (v - mean) * (v - mean) / 5;
  const Estimate e = ipw_spend(t.sample(false), t.policy.data(), 0.95);
  EXPECT_NEAR(e.value, mean, 1e-12);
  EXPECT_NEAR(e.se, std::sqrt(var / 6), 1e-12);
  EXPECT_NEAR(e.hi - e.value, 1.959963984540054 * e.se, 1e-9);
  EXPECT_NEAR(e.value - e.lo, e.hi - e.value, 1e-12);
}

TEST(Spend, EmpiricalSharesGiveTheStratifiedEstimator) {
  const Tiny t;
  // Arm 0 rows 0, 3, 5: x = c 1[pi = t] = 0, 0.5, 0; arm 1 rows 1, 2, 4: x = 2, 0, 3. With p_j = N_j / N the estimate
  // is the sum of the arm means, its variance the sum of the within-arm variances over N_j.
  const double m0 = 0.5 / 3, m1 = 5.0 / 3;
  const double v0 = ((0 - m0) * (0 - m0) + (0.5 - m0) * (0.5 - m0) + m0 * m0) / 2;
  const double v1 = ((2 - m1) * (2 - m1) + m1 * m1 + (3 - m1) * (3 - m1)) / 2;
  const Estimate e = ipw_spend(t.sample(true), t.policy.data(), 0.9);
  EXPECT_NEAR(e.value, m0 + m1, 1e-12);
  EXPECT_NEAR(e.se, std::sqrt(v0 / 3 + v1 / 3), 1e-12);
  EXPECT_NEAR(e.hi - e.value, 1.6448536269514722 * e.se, 1e-9);
  // The estimate is the IPW cost of the policy (policy_value), whatever the propensities.
  for (bool emp : {false, true})
    EXPECT_NEAR(ipw_spend(t.sample(emp), t.policy.data()).value, policy_value(t.sample(emp), t.policy).cost, 1e-12);
  std::vector<uint8_t> bad = t.policy;
  bad[2] = 2;
  EXPECT_THROW(ipw_spend(t.sample(true), bad.data()), DataError);
}

TEST(Spend, TheIntervalCoversTheTrueSpendAtItsLevel) {
  // 1,000 trials of 2,000 users from one population; the policy is fixed (the true tables' dual policy at lambda 0.2),
  // its true spend is the population mean of true_cost at the chosen arms. A correct 90% interval covers it in
  // [0.87, 0.93] of the trials with probability > 0.998 (binomial sd 0.0095).
  test::Trial pop(200000, 4, 21, 4, true);
  std::vector<uint8_t> pol;
  solver::policy_at(pop.truth(), 0.2, pol);
  const double truth = true_value(pop.truth(), pol, 1).cost;
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int64_t> pick(0, pop.n() - 1);
  int covered = 0;
  const int trials = 1000, n = 2000;
  std::vector<int32_t> arm(n);
  std::vector<float> rev(n), cost(n);
  std::vector<uint8_t> p(n);
  for (int r = 0; r < trials; ++r) {
    for (int i = 0; i < n; ++i) {
      const int64_t k = pick(rng);
      arm[i] = pop.t.treatment[k], rev[i] = pop.t.revenue[k], cost[i] = pop.t.cost[k], p[i] = pol[k];
    }
    RctSample s = make_sample(arm, rev, cost, 4, pop.meta.rct_propensity);
    const Estimate e = ipw_spend(s, p.data(), 0.9);
    covered += e.lo <= truth && truth <= e.hi;
  }
  std::printf("IPW spend 90%% CI coverage over %d trials of %d users: %.3f\n", trials, n, double(covered) / trials);
  EXPECT_GE(covered, 870);
  EXPECT_LE(covered, 930);
}

TEST(Spend, VerdictsAreTheBudgetAgainstTheWholeInterval) {
  Estimate e{1.0, 0.05, 0.9, 1.1};
  EXPECT_EQ(judge_spend(e, 1.0), SpendVerdict::kMeets);
  EXPECT_EQ(judge_spend(e, 0.95), SpendVerdict::kMeets);
  EXPECT_EQ(judge_spend(e, 0.85), SpendVerdict::kOverspends);
  EXPECT_EQ(judge_spend(e, 1.2), SpendVerdict::kUnderspends);
  EXPECT_EQ(to_string(SpendVerdict::kOverspends), "OVERSPENDS");
}

TEST(Spend, CalibrationNames) {
  EXPECT_EQ(parse_budget_calibration("auto", true, "k"), BudgetCalibration::kTrial);
  EXPECT_EQ(parse_budget_calibration("auto", false, "k"), BudgetCalibration::kPredicted);
  EXPECT_EQ(parse_budget_calibration("predicted", true, "k"), BudgetCalibration::kPredicted);
  EXPECT_THROW(parse_budget_calibration("ipw", true, "allocate.budget_calibration"), ConfigError);
}

TEST(Spend, PredictedLambdaIsTheSmallestLambdaWhosePredictedSpendFitsTheBudget) {
  test::Trial pop(3000, 4, 8);
  const solver::Scores s = pop.truth();
  std::vector<uint8_t> pol;
  for (double b : {0.1, 0.4, 0.9}) {
    bool reached = false;
    const double l = predicted_lambda(s, b, &reached, 1);
    EXPECT_TRUE(reached);
    solver::policy_at(s, l, pol);
    EXPECT_LE(predicted_spend(s, pol.data()), b + 1e-12) << b;
    solver::policy_at(s, l * (1 - 1e-6), pol);  // just below: spends more than b
    EXPECT_GT(predicted_spend(s, pol.data()), b) << b;
  }
  bool reached = true;
  predicted_lambda(s, 1e-9, &reached, 1);  // below the cheapest policy (control costs 0 here: 0 spend fits)
  EXPECT_TRUE(reached);
}

// On a small trial one row's switch moves the IPW spend by more than the bisection's tolerance, so most budgets fall
// in a jump: trial calibration then reaches them from below (stepped), never above, and calls them reached; only a
// budget beyond what lambda -> 0 spends is unreached.
TEST(Spend, TrialLambdaOnASmallTrialReachesBudgetsFromBelow) {
  test::Trial pop(300, 4, 5);
  const RctSample s = pop.sample();
  const IpwPath path(pop.truth(), s, 1);
  const double most = path.at(1e-12).cost;
  int stepped = 0;
  for (double b = 0.05; b < 0.95 * most; b += 0.05) {
    const EomPoint p = eom_at(path, b);
    ASSERT_TRUE(p.reached()) << b;
    stepped += p.stepped;
    if (p.stepped) {
      EXPECT_LE(p.cost, b) << b;
      EXPECT_GT(p.step_over, b) << b;
      EXPECT_EQ(path.at(p.lambda).cost, p.cost) << b;
    }
    bool reached = false;
    EXPECT_EQ(trial_lambda(path, b, &reached), p.lambda);
    EXPECT_TRUE(reached);
  }
  EXPECT_GT(stepped, 0) << "300 rows: steps of about 1/75 per user, wider than eps_rel * b";
  bool reached = true;
  trial_lambda(path, 1.5 * most + 1, &reached);
  EXPECT_FALSE(reached);
}

// A third of the users share one score row (a scorer whose outputs saturate): they all switch arm at one lambda and
// the IPW spend jumps over the budget there. trial_calibrate splits the group by a fixed hash so that the calibrated
// decisions' IPW spend meets the budget from below, to within one row's term; the unsplit sides of the jump miss it.
TEST(Spend, TrialCalibrationSplitsATiedGroup) {
  test::Trial pop(30000, 3, 4);
  const RctSample s = pop.sample();
  metrics::ScoreTable t;
  const solver::Scores truth = pop.truth();
  t.n = truth.n, t.m = truth.m;
  t.r.assign(truth.r, truth.r + truth.n * truth.m);
  t.c.assign(truth.c, truth.c + truth.n * truth.m);
  for (int64_t i = 0; i < t.n; i += 3)  // the tied third: arm 1 at ROI 2 over control, arm 2 dominated
    t.r[i * 3 + 0] = 1, t.c[i * 3 + 0] = 0, t.r[i * 3 + 1] = 3, t.c[i * 3 + 1] = 1, t.r[i * 3 + 2] = 3, t.c[i * 3 + 2] = 2;
  const solver::Scores sc = t.view();
  const IpwPath path(sc, s, 1);
  std::vector<uint8_t> below, above;
  solver::policy_at(sc, 2 * (1 - 1e-9), below);
  solver::policy_at(sc, 2 * (1 + 1e-9), above);
  const double b = 0.5 * (ipw_spend(s, below.data()).value + ipw_spend(s, above.data()).value);  // inside the jump
  ASSERT_GT(ipw_spend(s, below.data()).value - ipw_spend(s, above.data()).value, 0.05) << "a real jump";
  const TrialCalibration c = trial_calibrate(sc, path, b);
  ASSERT_TRUE(c.reached);
  EXPECT_NEAR(c.lambda, 2.0, 1e-6);
  EXPECT_GT(c.fill, 0.1);
  EXPECT_LT(c.fill, 0.9);
  EXPECT_GE(c.tied_trial_rows, 10000 - 10);
  std::vector<uint8_t> pol;
  calibrated_policy(sc, c, pol);
  const double spend = ipw_spend(s, pol.data()).value;
  EXPECT_LE(spend, b + 1e-12);
  EXPECT_GT(spend, b - 3 * 2.0 * 3 / double(s.n)) << "within a few rows' IPW terms (cost <= 2, 1/p = 3)";
  // The moved rows are the tied rows whose hash is below fill: about fill of them.
  int64_t moved = 0;
  for (int64_t i = 0; i < sc.n; ++i) {
    if (pol[size_t(i)] != above[size_t(i)]) {
      ASSERT_EQ(pol[size_t(i)], below[size_t(i)]) << i;
      ASSERT_LT(tie_hash(i), c.fill) << i;
      ++moved;
    }
  }
  EXPECT_NEAR(double(moved) / double(c.tied_trial_rows), c.fill, 0.03);
  // Without a tie at most the row on lambda's breakpoint is split: the truth's own scores.
  const IpwPath tp(truth, s, 1);
  const TrialCalibration u = trial_calibrate(truth, tp, 0.3);
  EXPECT_TRUE(u.fill == 0.0 || u.tied_trial_rows <= 2) << u.tied_trial_rows;
}

TEST(Spend, TrialLambdaIsTheEomBisectionAndJudgeAtReadsItsDecisions) {
  test::Trial pop(20000, 4, 9);
  const RctSample s = pop.sample();
  const IpwPath path(pop.truth(), s, 1);
  for (double b : {0.3, 0.7}) {
    bool reached = false;
    const double l = trial_lambda(path, b, &reached);
    const EomPoint p = eom_at(path, b);
    EXPECT_EQ(l, p.lambda);
    EXPECT_EQ(reached, p.reached());
    const BudgetDecision d = judge_at(pop.truth(), path, b, l);
    EXPECT_NEAR(d.spend.value, d.ipw.cost, 1e-12) << "the interval is centred on the IPW spend of the same decisions";
    // The bisection's lambda sits on a row's breakpoint, which IpwPath and policy_at may place on either side: at most
    // one row's IPW term apart (cost <= 4, 1 / p_j <= 4.1 here).
    EXPECT_NEAR(d.ipw.cost, p.cost, 4 * 4.1 / double(pop.n()));
    EXPECT_EQ(d.verdict, SpendVerdict::kMeets);
  }
  // Costs that barely differ between arms: lambda cannot hold a budget, and the decisions overspend it.
  std::vector<float> r(pop.t.true_revenue), c(size_t(pop.n()) * 4, 1.0f);
  const solver::Scores flat{pop.n(), 4, r.data(), c.data()};
  const IpwPath fpath(flat, s, 1);
  bool reached = true;
  const double l = trial_lambda(fpath, 0.2, &reached);
  EXPECT_FALSE(reached);
  EXPECT_EQ(judge_at(flat, fpath, 0.2, l).verdict, SpendVerdict::kOverspends);
}

TEST(Spend, CostCalibrationComparesEachArmsMeanPredictionWithItsObservedMean) {
  const Tiny t;
  const std::vector<float> r(12, 0.f), c{0, 1, 0, 4, 0, 2, 1, 1, 0, 3, 0, 5};  // rows x 2 arms
  const solver::Scores sc{6, 2, r.data(), c.data()};
  const auto cal = cost_calibration(sc, t.sample(true));
  ASSERT_EQ(cal.size(), 2u);
  // Predicted: mean of column j. Observed: mean cost over the rows that got j (arm 0: 0, 0.5, 0; arm 1: 2, 4, 3).
  EXPECT_NEAR(cal[0].predicted, (0 + 0 + 0 + 1 + 0 + 0) / 6.0, 1e-12);
  EXPECT_NEAR(cal[1].predicted, (1 + 4 + 2 + 1 + 3 + 5) / 6.0, 1e-12);
  EXPECT_NEAR(cal[0].observed, 0.5 / 3, 1e-12);
  EXPECT_NEAR(cal[1].observed, 3.0, 1e-12);
  EXPECT_NEAR(cal[1].ratio, (16 / 6.0) / 3.0, 1e-12);
  EXPECT_NEAR(worst_cost_factor(cal), std::max(3.0 / (16 / 6.0), (1 / 6.0) / (0.5 / 3)), 1e-12);
}

}  // namespace
}  // namespace dfcl::metrics
