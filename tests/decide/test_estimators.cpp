// \brief The policy-value estimators (metrics/policy_estimate.h, metrics/estimator_path.h) and cross-fitting
// (decide/crossfit.h): identities against IPW, exact values with a perfect outcome model, the path against brute force
// at many lambda, and, over many independent trials of one synthetic population with known truth, DR's unbiasedness,
// its variance against IPW's, and the coverage of the paired CI.
#include <gtest/gtest.h>

#include <cmath>    // for std::sqrt, std::fabs
#include <cstdio>   // for std::printf
#include <vector>   // for std::vector

#include "core/error.h"               // for DataError
#include "data/generator.h"           // for Generator
#include "decide/crossfit.h"          // for crossfit, ridge_fit_predict, fold_rows, check_folds
#include "metrics/bootstrap.h"        // for resample_counts
#include "metrics/cost_curve.h"       // for cost_curve, cost_curve_from
#include "metrics/scorers.h"          // for random_scores
#include "metrics/estimator_path.h"   // for EstimatorPath
#include "metrics/policy_estimate.h"  // for PolicyEstimator
#include "metrics/policy_value.h"     // for policy_value
#include "metrics/spend.h"            // for ipw_spend
#include "metrics/synthetic.h"        // for test::Trial
#include "solver/mckp.h"              // for policy_at

namespace dfcl {
namespace {

using metrics::EstimatorKind;

metrics::ScoreTable ridge_crossfit(const data::Table& t, int folds = 5, uint64_t seed = 0) {
  return decide::crossfit(t, t.num_arms, folds, seed, {}, "estimator.folds",
                          [&](const data::Table& r, const std::vector<int64_t>& tr, const std::vector<int64_t>& pr, int) {
                            return decide::ridge_fit_predict(r, t.num_arms, tr, pr, 1.0);
                          });
}

// A fixed policy: the true tables' dual policy at lambda (a function of the user, not of the trial's outcomes).
std::vector<uint8_t> true_policy(const test::Trial& tr, double lambda) {
  std::vector<uint8_t> a;
  solver::policy_at(tr.truth(), lambda, a);
  return a;
}

double true_mean(const test::Trial& tr, const std::vector<uint8_t>& a, bool cost) {
  double s = 0;
  const int m = tr.m();
  for (int64_t i = 0; i < tr.n(); ++i) s += (cost ? tr.t.true_cost : tr.t.true_revenue)[size_t(i * m + a[size_t(i)])];
  return s / double(tr.n());
}

TEST(PolicyEstimator, IpwMatchesPolicyValueAndIpwSpend) {
  test::Trial tr(3000, 4, 7);
  for (bool design : {false, true}) {
    metrics::RctSample s = tr.sample();
    if (design) s.propensity = tr.meta.rct_propensity, s.empirical = false;
    const std::vector<uint8_t> a = true_policy(tr, 0.7);
    const metrics::PolicyEstimator ipw(s, EstimatorKind::kIpw);
    const metrics::PolicyValue v = metrics::policy_value(s, a);
    const metrics::PolicyEstimate e = ipw.estimate(a.data());
    const metrics::Estimate sp = metrics::ipw_spend(s, a.data());
    EXPECT_NEAR(e.revenue.value, v.revenue, 1e-12 * std::fabs(v.revenue));
    EXPECT_NEAR(e.spend.value, v.cost, 1e-12 * std::fabs(v.cost));
    EXPECT_NEAR(e.spend.se, sp.se, 1e-12 * sp.se);  // the same stratified (or plain) variance
    // DR with a zero outcome model is IPW.
    metrics::ScoreTable zero;
    zero.n = tr.n(), zero.m = tr.m();
    zero.r.assign(size_t(zero.n * zero.m), 0.0f), zero.c = zero.r;
    const solver::Scores zv = zero.view();
    const metrics::PolicyEstimator dr(s, EstimatorKind::kDr, &zv);
    EXPECT_NEAR(dr.estimate(a.data()).revenue.value, v.revenue, 1e-12 * std::fabs(v.revenue));
    EXPECT_NEAR(dr.estimate(a.data()).revenue.se, e.revenue.se, 1e-12 * e.revenue.se);
  }
}

TEST(PolicyEstimator, PerfectOutcomeModelOnNoiselessOutcomesIsExact) {
  // Outcomes equal to the true tables (no noise): with the true tables as outcome model every DR term is the true value
  // of the policy's arm, so DR equals the truth exactly and its SE is that of the true values across rows.
  test::Trial tr(2000, 5, 3);
  data::Table t = tr.t;
  for (int64_t i = 0; i < t.rows; ++i) {
    const int j = t.treatment[size_t(i)];
    t.revenue[size_t(i)] = t.true_revenue[size_t(i * t.num_arms + j)];
    t.cost[size_t(i)] = t.true_cost[size_t(i * t.num_arms + j)];
  }
  metrics::RctSample s = metrics::make_sample(t.treatment, t.revenue, t.cost, t.num_arms);
  const solver::Scores truth{t.rows, t.num_arms, t.true_revenue.data(), t.true_cost.data()};
  const std::vector<uint8_t> a = true_policy(tr, 0.5);
  for (EstimatorKind k : {EstimatorKind::kDr, EstimatorKind::kSndr}) {
    const metrics::PolicyEstimator dr(s, k, &truth);
    const metrics::PolicyValue v = dr.value(a.data());
    EXPECT_NEAR(v.revenue, true_mean(tr, a, false), 1e-6);
    EXPECT_NEAR(v.cost, true_mean(tr, a, true), 1e-6);
  }
}

TEST(PolicyEstimator, SelfNormalisedByHand) {
  // Four rows, two arms, design propensities 0.5 / 0.5; the policy picks arm 1 for rows 0, 1 and arm 0 for 2, 3.
  const std::vector<int32_t> arm{1, 0, 0, 0};
  const std::vector<float> rev{4, 1, 2, 3}, cost{1, 0, 0, 0};
  metrics::RctSample s = metrics::make_sample(arm, rev, cost, 2, {0.5, 0.5});
  const std::vector<uint8_t> pol{1, 1, 0, 0};
  // IPW: (4/0.5 + 2/0.5 + 3/0.5) / 4 = 9.0; SNIPW: (8 + 4 + 6) / (2 + 2 + 2) = 3.0.
  EXPECT_DOUBLE_EQ(metrics::PolicyEstimator(s, EstimatorKind::kIpw).value(pol.data()).revenue, 4.5);
  EXPECT_DOUBLE_EQ(metrics::PolicyEstimator(s, EstimatorKind::kSnipw).value(pol.data()).revenue, 3.0);
  // With an outcome model m = 1 everywhere: DR = 1 + (1/4)(3/0.5 + 1/0.5 + 2/0.5) = 4.0;
  // SNDR = 1 + (6 + 2 + 4) / 6 = 3.0.
  metrics::ScoreTable one;
  one.n = 4, one.m = 2, one.r.assign(8, 1.0f), one.c.assign(8, 0.0f);
  const solver::Scores ov = one.view();
  EXPECT_DOUBLE_EQ(metrics::PolicyEstimator(s, EstimatorKind::kDr, &ov).value(pol.data()).revenue, 4.0);
  EXPECT_DOUBLE_EQ(metrics::PolicyEstimator(s, EstimatorKind::kSndr, &ov).value(pol.data()).revenue, 3.0);
}

TEST(PolicyEstimator, MissingOrMisshapenOutcomeModelIsAnError) {
  test::Trial tr(200, 3, 1);
  const metrics::RctSample s = tr.sample();
  EXPECT_THROW(metrics::PolicyEstimator(s, EstimatorKind::kDr), DataError);
  metrics::ScoreTable bad;
  bad.n = 100, bad.m = 3, bad.r.assign(300, 0.0f), bad.c = bad.r;
  const solver::Scores bv = bad.view();
  try {
    metrics::PolicyEstimator(s, EstimatorKind::kDr, &bv);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("100 x 3, the trial rows 200 x 3"), std::string::npos) << e.what();
  }
}

// The path's value at lambda equals the fixed-policy estimator on the dual policy at lambda, for every kind, at lambdas
// between breakpoints, with and without bootstrap counts; sweep() visits the same values.
TEST(EstimatorPath, MatchesTheFixedPolicyEstimatorAtEveryLambda) {
  test::Trial tr(1500, 4, 11);
  const metrics::RctSample s = tr.sample();
  const metrics::ScoreTable om = ridge_crossfit(tr.t);
  const solver::Scores omv = om.view();
  const metrics::ScoreTable rnd = [&] {  // scores of a noisy model: the truth plus noise, in float
    metrics::ScoreTable t;
    t.n = tr.n(), t.m = tr.m(), t.r = tr.t.true_revenue, t.c = tr.t.true_cost;
    for (size_t i = 0; i < t.r.size(); ++i) t.r[i] *= float(1 + 0.3 * std::sin(double(i) * 1.7));
    return t;
  }();
  std::vector<uint32_t> counts;
  metrics::resample_counts(s.n, 5, 3, counts);
  for (EstimatorKind k : {EstimatorKind::kIpw, EstimatorKind::kSnipw, EstimatorKind::kDr, EstimatorKind::kSndr}) {
    const metrics::EstimatorPath path(rnd.view(), s, k, &omv, 2);
    const metrics::PolicyEstimator est(s, k, &omv);
    const metrics::EstimatorPath::Weights w = path.weigh(counts.data());
    std::vector<uint8_t> a;
    int checked = 0;
    // The path holds the DR residuals y - m(t) as float (as the outcomes are), the fixed-policy estimator in double.
    const double tol = metrics::needs_outcome_model(k) ? 1e-6 : 1e-9;
    for (double lam = path.bound().hi * 1.01; lam > 1e-4; lam *= 0.93) {
      solver::policy_at(rnd.view(), lam, a);
      const metrics::PolicyValue p = path.at(lam), q = est.value(a.data());
      EXPECT_NEAR(p.revenue, q.revenue, tol * (1 + std::fabs(q.revenue))) << metrics::to_string(k) << " " << lam;
      EXPECT_NEAR(p.cost, q.cost, tol * (1 + std::fabs(q.cost))) << metrics::to_string(k) << " " << lam;
      const metrics::PolicyValue pw = path.at(lam, w), qw = est.value(a.data(), counts.data());
      EXPECT_NEAR(pw.revenue, qw.revenue, tol * (1 + std::fabs(qw.revenue))) << metrics::to_string(k);
      ++checked;
    }
    EXPECT_GT(checked, 50);
    // sweep: the value after each step equals at() just below that lambda.
    std::vector<std::pair<double, metrics::PolicyValue>> steps;
    path.sweep([&](double l, const metrics::PolicyValue& v) { steps.emplace_back(l, v); });
    ASSERT_GT(steps.size(), 10u);
    for (size_t q = 1; q < steps.size(); q += steps.size() / 10) {
      const double below = q + 1 < steps.size() ? 0.5 * (steps[q].first + steps[q + 1].first) : steps[q].first * 0.5;
      const metrics::PolicyValue v = path.at(below);
      EXPECT_NEAR(steps[q].second.revenue, v.revenue, 1e-9 * (1 + std::fabs(v.revenue))) << metrics::to_string(k);
    }
  }
}

// With a zero outcome model, DR's path is IPW's: the same values at every lambda, the same uniform policies, and the
// cost curve built from its sweep (what dfcl evaluate plots for DR) is IpwPath's cost curve.
TEST(EstimatorPath, ZeroOutcomeModelGivesIpwsCostCurve) {
  test::Trial tr(3000, 4, 21);
  const metrics::RctSample s = tr.sample();
  metrics::ScoreTable zero;
  zero.n = tr.n(), zero.m = tr.m(), zero.r.assign(size_t(zero.n * zero.m), 0.0f), zero.c = zero.r;
  const solver::Scores zv = zero.view();
  const metrics::ScoreTable sc = metrics::random_scores(tr.n(), tr.m(), 4, 2);
  const metrics::IpwPath ipw(sc.view(), s, 2);
  const metrics::EstimatorPath dr(sc.view(), s, EstimatorKind::kDr, &zv, 2);
  for (int j = 0; j < tr.m(); ++j) {
    EXPECT_NEAR(dr.uniform(j).revenue, metrics::uniform_policy_value(s, j).revenue, 1e-12);
    EXPECT_NEAR(dr.uniform(j).cost, metrics::uniform_policy_value(s, j).cost, 1e-12);
  }
  metrics::CostCurveOptions co;
  co.max_points = 0;
  const metrics::CostCurve a = metrics::cost_curve(ipw, co);
  const metrics::CostCurve b = metrics::cost_curve_from(
      tr.m(), [&](int j) { return dr.uniform(j); }, [&](const auto& fn) { dr.sweep(fn); }, co);
  // DR's sweep also steps at every hull breakpoint of the direct part (here of size 0): more points, the same curve.
  EXPECT_GE(b.points, a.points);
  EXPECT_NEAR(a.area, b.area, 1e-12);
  for (size_t k = 0; k < b.lambda.size(); k += 97) {
    const metrics::PolicyValue v = ipw.at(b.lambda[k] * (1 - 1e-12));  // just below the step, as the sweep reports
    EXPECT_NEAR(b.cost[k], v.cost - a.control_cost, 1e-9) << k;
    EXPECT_NEAR(b.revenue[k], v.revenue - a.control_revenue, 1e-9) << k;
  }
}

TEST(Crossfit, RidgeRecoversALinearTruthAndFoldsAreChecked) {
  // Noise-free linear outcomes per arm: ridge with a negligible penalty predicts them exactly on held-out folds.
  data::Table t;
  data::Meta meta;
  meta.num_features = 3, meta.num_arms = 3, meta.arm_names = {"c", "a", "b"};
  t.reset(meta, 600);
  for (int64_t i = 0; i < t.rows; ++i) {
    for (int f = 0; f < 3; ++f) t.features[size_t(i * 3 + f)] = float(std::sin(double(i * 3 + f)));
    const int j = int(i % 3);
    t.treatment[size_t(i)] = j;
    const float* x = &t.features[size_t(i * 3)];
    t.revenue[size_t(i)] = float(1 + j + (j + 1) * x[0] - 2 * x[1] + 0.5 * j * x[2]);
    t.cost[size_t(i)] = float(0.5 * j + 0.1 * x[0]);
    t.row_id[size_t(i)] = i;
  }
  const metrics::ScoreTable p = decide::crossfit(t, 3, 4, 1, meta.arm_names, "k",
      [](const data::Table& r, const std::vector<int64_t>& tr, const std::vector<int64_t>& pr, int) {
        return decide::ridge_fit_predict(r, 3, tr, pr, 1e-9);
      });
  for (int64_t i = 0; i < t.rows; i += 37)
    for (int j = 0; j < 3; ++j) {
      const float* x = &t.features[size_t(i * 3)];
      EXPECT_NEAR(p.r[size_t(i * 3 + j)], 1 + j + (j + 1) * x[0] - 2 * x[1] + 0.5 * j * x[2], 1e-4);
      EXPECT_NEAR(p.c[size_t(i * 3 + j)], 0.5 * j + 0.1 * x[0], 1e-5);
    }
  // The same rows always fall in the same fold.
  EXPECT_EQ(decide::fold_rows(t, 4, 1), decide::fold_rows(t, 4, 1));
  // A fold whose complement lacks an arm names the fold and the arm.
  for (int64_t i = 0; i < t.rows; ++i)
    if (t.treatment[size_t(i)] == 2) t.treatment[size_t(i)] = 1;
  t.treatment[0] = 2;  // arm 2 only on row 0
  try {
    decide::crossfit(t, 3, 4, 1, meta.arm_names, "evaluate.estimator.folds",
                     [](const data::Table& r, const std::vector<int64_t>& tr, const std::vector<int64_t>& pr, int) {
                       return decide::ridge_fit_predict(r, 3, tr, pr, 1.0);
                     });
    FAIL() << "no error";
  } catch (const DataError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("evaluate.estimator.folds: the model of fold " +
                     std::to_string(decide::fold_of(0, 4, 1)) + " of 4"), std::string::npos) << m;
    EXPECT_NE(m.find("no row of arm 2 ('b')"), std::string::npos) << m;
  }
}

// Many independent trials (fresh users of one population each time): for fixed policies, the mean error of IPW and DR
// against each trial's true value is within its standard error of 0; DR's variance is below IPW's; the paired 95% CI
// of two policies' difference covers the true difference in about 95% of trials.
TEST(PolicyEstimator, UnbiasedLowerVarianceAndPairedCoverageOverManyTrials) {
  const int T = 300;
  const int64_t n = 3000;
  data::GeneratorConfig c;
  c.rct_rows = n, c.observational_rows = 0, c.features = 8, c.arms = 4, c.seed = 17;
  const double lam[2] = {0.6, 1.2};  // two policies: the true dual policies at two prices
  // per kind (0 ipw, 1 dr), policy (0, 1), outcome (revenue, spend): errors
  std::vector<double> err[2][2][2];
  std::vector<double> diff_ipw_paired, diff_dr_paired;
  int covered_ipw = 0, covered_dr = 0;
  for (int k = 0; k < T; ++k) {
    c.first_row = int64_t(k) * n;
    data::Generator g(c);
    data::Table t;
    g.fill(0, n, t, 2);
    for (int64_t i = 0; i < n; ++i) t.row_id[size_t(i)] = c.first_row + i;
    const metrics::RctSample s = metrics::make_sample(t.treatment, t.revenue, t.cost, t.num_arms);
    const solver::Scores truth{n, t.num_arms, t.true_revenue.data(), t.true_cost.data()};
    const metrics::ScoreTable om = ridge_crossfit(t, 5, uint64_t(k));
    const solver::Scores omv = om.view();
    const metrics::PolicyEstimator ipw(s, EstimatorKind::kIpw), dr(s, EstimatorKind::kDr, &omv);
    std::vector<uint8_t> a[2];
    double tv[2][2];
    for (int p = 0; p < 2; ++p) {
      solver::policy_at(truth, lam[p], a[p]);
      double r = 0, cs = 0;
      for (int64_t i = 0; i < n; ++i)
        r += t.true_revenue[size_t(i * t.num_arms + a[p][size_t(i)])],
            cs += t.true_cost[size_t(i * t.num_arms + a[p][size_t(i)])];
      tv[p][0] = r / double(n), tv[p][1] = cs / double(n);
      const metrics::PolicyValue vi = ipw.value(a[p].data()), vd = dr.value(a[p].data());
      err[0][p][0].push_back(vi.revenue - tv[p][0]), err[0][p][1].push_back(vi.cost - tv[p][1]);
      err[1][p][0].push_back(vd.revenue - tv[p][0]), err[1][p][1].push_back(vd.cost - tv[p][1]);
    }
    const double truth_d = tv[0][0] - tv[1][0];
    const metrics::PolicyEstimate di = ipw.difference(a[0].data(), a[1].data()),
                                  dd = dr.difference(a[0].data(), a[1].data());
    diff_ipw_paired.push_back(di.revenue.value - truth_d);
    diff_dr_paired.push_back(dd.revenue.value - truth_d);
    covered_ipw += di.revenue.lo <= truth_d && truth_d <= di.revenue.hi;
    covered_dr += dd.revenue.lo <= truth_d && truth_d <= dd.revenue.hi;
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / double(v.size());
  };
  auto var = [&](const std::vector<double>& v) {
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return s / double(v.size() - 1);
  };
  for (int kind = 0; kind < 2; ++kind)
    for (int p = 0; p < 2; ++p)
      for (int o = 0; o < 2; ++o) {
        const std::vector<double>& e = err[kind][p][o];
        EXPECT_LT(std::fabs(mean(e)), 3.5 * std::sqrt(var(e) / double(T)))
            << (kind ? "dr" : "ipw") << " policy " << p << (o ? " spend" : " revenue") << ": biased";
      }
  double factor[2][2];
  for (int p = 0; p < 2; ++p)
    for (int o = 0; o < 2; ++o) {
      factor[p][o] = var(err[0][p][o]) / var(err[1][p][o]);
      EXPECT_GT(factor[p][o], 1.0) << "policy " << p << (o ? " spend" : " revenue") << ": DR no better than IPW";
    }
  // Unpaired IPW: the variance of the difference of two independent estimates (as if on different rows).
  const double unpaired = var(err[0][0][0]) + var(err[0][1][0]);
  const double paired_ipw = var(diff_ipw_paired), paired_dr = var(diff_dr_paired);
  EXPECT_LT(paired_ipw, unpaired);
  EXPECT_LT(paired_dr, paired_ipw);
  const double cov_ipw = double(covered_ipw) / T, cov_dr = double(covered_dr) / T;
  EXPECT_GT(cov_dr, 0.915);
  EXPECT_LT(cov_dr, 0.985);
  EXPECT_GT(cov_ipw, 0.915);
  EXPECT_LT(cov_ipw, 0.985);
  std::printf("[measured] %d trials of %lld rows: variance IPW/DR, revenue %.2f and %.2f, spend %.2f and %.2f; the "
              "difference of the two policies: unpaired IPW / paired IPW %.2f, unpaired IPW / paired DR %.2f; paired "
              "95%% CI coverage IPW %.3f, DR %.3f\n",
              T, (long long)n, factor[0][0], factor[1][0], factor[0][1], factor[1][1], unpaired / paired_ipw,
              unpaired / paired_dr, cov_ipw, cov_dr);
  RecordProperty("var_ratio_revenue", std::to_string(factor[0][0]));
}

}  // namespace
}  // namespace dfcl
