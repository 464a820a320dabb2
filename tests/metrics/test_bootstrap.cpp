// \brief Bootstrap: counts, determinism across threads, weighted evaluation equals duplicated rows, AUCC CI.
#include <gtest/gtest.h>  // for TEST

#include <cmath>    // for std::exp, std::sin, std::sqrt
#include <numeric>  // for std::accumulate

#include "core/error.h"            // for ConfigError
#include "metrics/bootstrap.h"     // for bootstrap, resample_counts
#include "metrics/policy_value.h"  // for policy_value
#include "metrics/scorers.h"       // for true_roi_scores
#include "metrics/synthetic.h"     // for Trial

namespace dfcl::metrics {
namespace {

TEST(Bootstrap, CountsAreAResampleAndDeterministic) {
  std::vector<uint32_t> a, b, c;
  resample_counts(1000, 7, 3, a);
  resample_counts(1000, 7, 3, b);
  resample_counts(1000, 7, 4, c);
  EXPECT_EQ(std::accumulate(a.begin(), a.end(), uint64_t(0)), 1000u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // About 1 - 1/e of the rows appear at least once.
  int64_t seen = 0;
  for (uint32_t x : a) seen += x > 0;
  EXPECT_NEAR(seen / 1000.0, 1 - std::exp(-1.0), 0.05);
}

TEST(Bootstrap, SameIntervalsOnAnyThreadCount) {
  std::vector<double> x(500);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(double(i)) * 3 + (i % 7);
  auto mean = [&](const uint32_t* counts, std::vector<double>& out) {
    double s = 0, w = 0;
    for (size_t i = 0; i < x.size(); ++i) s += counts[i] * x[i], w += counts[i];
    out[0] = s / w;
  };
  const double est = std::accumulate(x.begin(), x.end(), 0.0) / double(x.size());
  BootstrapOptions o;
  o.replicates = 300;
  o.threads = 1;
  auto one = bootstrap(500, {est}, o, mean);
  o.threads = 3;
  auto three = bootstrap(500, {est}, o, mean);
  EXPECT_EQ(one[0].lo, three[0].lo);
  EXPECT_EQ(one[0].hi, three[0].hi);
  EXPECT_EQ(one[0].replicates, 300);
  // The standard error of a mean: sd / sqrt(n), to bootstrap accuracy.
  double ss = 0;
  for (double v : x) ss += (v - est) * (v - est);
  EXPECT_NEAR(one[0].se, std::sqrt(ss / x.size()) / std::sqrt(500.0), 0.15 * one[0].se);
  EXPECT_LT(one[0].lo, est);
  EXPECT_GT(one[0].hi, est);
  o.replicates = 1;
  EXPECT_THROW(bootstrap(500, {est}, o, mean), ConfigError);
  o.replicates = 10;
  o.level = 1.5;
  EXPECT_THROW(bootstrap(500, {est}, o, mean), ConfigError);
}

TEST(Bootstrap, WeightedPolicyValueEqualsDuplicatedRows) {
  const std::vector<int32_t> t = {0, 1, 1, 0, 2};
  const std::vector<float> r = {1, 2, 3, 4, 5}, c = {0, 1, 1, 0, 2};
  const std::vector<uint8_t> policy = {0, 1, 0, 0, 2};
  const std::vector<uint32_t> counts = {2, 1, 0, 1, 3};
  RctSample s = make_sample(t, r, c, 3, {0.4, 0.4, 0.2});
  PolicyValue w = policy_value(s, policy.data(), counts.data());
  // Duplicated: rows 0,0,1,3,4,4,4 (7 rows); matched: 0,0 (r 1, p .4), 1 (2, .4), 3 (4, .4), 4 x3 (5, .2).
  EXPECT_NEAR(w.revenue, (1 / .4 * 2 + 2 / .4 + 4 / .4 + 3 * 5 / .2) / 7, 1e-12);
  EXPECT_NEAR(w.cost, (1 / .4 + 3 * 2 / .2) / 7, 1e-12);
}

TEST(Bootstrap, AuccIntervalCoversTheEstimate) {
  test::Trial trial(50000, 2, 31);
  const RctSample s = trial.sample();
  std::vector<double> roi = roi_scores(trial.truth());
  Aucc a(AuccInput{s.n, s.arm, s.revenue, s.cost, roi.data(), 1}, 50);
  const double est = a.result().aucc;
  BootstrapOptions o;
  o.replicates = 100;
  o.threads = 2;
  Interval ci = bootstrap_aucc(a, est, o);
  EXPECT_LT(ci.lo, est);
  EXPECT_GT(ci.hi, est);
  EXPECT_GT(ci.se, 0);
  EXPECT_LT(ci.hi - ci.lo, 0.5);
}

}  // namespace
}  // namespace dfcl::metrics
