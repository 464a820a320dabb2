// \brief Generator: determinism, RCT shares, selection bias, and that observed outcomes are unbiased for the truth.
#include <gtest/gtest.h>  // for TEST

#include <algorithm>  // for std::nth_element
#include <cmath>      // for std::sqrt

#include "core/config.h"   // for Config
#include "core/error.h"    // for ConfigError
#include "data/generator.h"
#include "fixtures.h"

using namespace dfcl;
using data::Generator;
using data::Table;

TEST(Generator, RowsArePureFunctionsOfSeedAndIndex) {
  Generator g(test::small_config(3000, 5000));
  Table whole, a, b, one;
  g.fill(0, 8000, whole, 4);
  g.fill(0, 3500, a, 1);
  g.fill(3500, 4500, b, 3);
  for (int64_t i = 0; i < 8000; ++i) {
    const Table& part = i < 3500 ? a : b;
    int64_t j = i < 3500 ? i : i - 3500;
    ASSERT_EQ(whole.treatment[i], part.treatment[j]) << i;
    ASSERT_EQ(whole.revenue[i], part.revenue[j]) << i;
    for (int k = 0; k < 6; ++k) ASSERT_EQ(whole.features[i * 6 + k], part.features[j * 6 + k]);
  }
  Generator other(test::small_config(3000, 5000, 6, 3, 6));
  other.fill(0, 1, one, 1);
  EXPECT_NE(one.features[0], whole.features[0]);  // another seed, another population
}

// first_row: a file of the population's rows F.. is the same users as rows F.. of a file generated from row 0, trial
// rows included (both families), so a second trial or a deployment population can share no user with the first.
TEST(Generator, FirstRowGivesTheSameUsersAsALargerFile) {
  for (const char* family : {"marketing", "retail"}) {
    auto big = data::GeneratorConfig::defaults(family);
    big.rct_rows = 6000, big.observational_rows = 0, big.seed = 11;
    auto tail = big;
    tail.first_row = 2500, tail.rct_rows = 3500;
    Table whole, part;
    Generator(big).fill(0, 6000, whole, 2);
    Generator g(tail);
    g.fill(0, 3500, part, 1);
    EXPECT_EQ(g.meta().num_rows, 3500);
    EXPECT_NE(g.meta().origin.find("first_row=2500"), std::string::npos);
    const int f = int(whole.features.size() / 6000);
    const int m = int(whole.true_cost.size() / 6000);
    for (int64_t i = 0; i < 3500; ++i) {
      const int64_t w = 2500 + i;
      ASSERT_EQ(whole.treatment[w], part.treatment[i]) << family << " " << i;
      ASSERT_EQ(whole.revenue[w], part.revenue[i]) << family << " " << i;
      ASSERT_EQ(whole.cost[w], part.cost[i]) << family << " " << i;
      ASSERT_EQ(whole.source[w], part.source[i]) << family << " " << i;
      for (int k = 0; k < f; ++k) ASSERT_EQ(whole.features[w * f + k], part.features[i * f + k]);
      for (int j = 0; j < m; ++j) ASSERT_EQ(whole.true_cost[w * m + j], part.true_cost[i * m + j]);
    }
  }
  auto bad = data::GeneratorConfig::defaults("marketing");
  bad.first_row = -1;
  EXPECT_THROW(bad.validate(), ConfigError);
}

TEST(Generator, RctArmSharesMatchPropensities) {
  auto c = test::small_config(400000, 0, 4, 4);
  c.rct_propensity = {0.4, 0.3, 0.2, 0.1};
  Generator g(c);
  Table t;
  g.fill(0, g.rows(), t, 2);
  std::vector<double> n(4, 0);
  for (int64_t i = 0; i < t.rows; ++i) {
    n[t.treatment[i]] += 1;
    ASSERT_FLOAT_EQ(t.propensity[i], float(c.rct_propensity[t.treatment[i]]));
    ASSERT_EQ(t.source[i], 0);
  }
  for (int j = 0; j < 4; ++j) {
    double p = c.rct_propensity[j], sd = std::sqrt(p * (1 - p) / t.rows);
    EXPECT_NEAR(n[j] / t.rows, p, 5 * sd) << "arm " << j;
  }
}

// Largest |z| of the difference in a feature's mean between rows given the top arm and control.
static double max_feature_shift(const Table& t, int64_t lo, int64_t hi, int top) {
  const int F = t.num_features;
  double best = 0;
  for (int k = 0; k < F; ++k) {
    double s[2] = {0, 0}, q[2] = {0, 0}, n[2] = {0, 0};
    for (int64_t i = lo; i < hi; ++i) {
      int g = t.treatment[i] == 0 ? 0 : t.treatment[i] == top ? 1 : -1;
      if (g < 0) continue;
      double v = t.features[i * F + k];
      s[g] += v, q[g] += v * v, n[g] += 1;
    }
    double m0 = s[0] / n[0], m1 = s[1] / n[1];
    double v0 = q[0] / n[0] - m0 * m0, v1 = q[1] / n[1] - m1 * m1;
    best = std::max(best, std::abs(m1 - m0) / std::sqrt(v0 / n[0] + v1 / n[1]));
  }
  return best;
}

TEST(Generator, ObservationalTreatmentDependsOnFeaturesRctDoesNot) {
  Generator g(test::small_config(100000, 100000, 8, 3));
  Table t;
  g.fill(0, g.rows(), t, 2);
  // RCT: 8 features, |z| of a null difference exceeds 4.5 with probability < 1e-4.
  EXPECT_LT(max_feature_shift(t, 0, 100000, 2), 4.5);
  // Observational: the logging policy selects on features; the shift is far beyond noise.
  EXPECT_GT(max_feature_shift(t, 100000, 200000, 2), 20.0);
  for (int64_t i = 100000; i < 200000; ++i) ASSERT_EQ(t.source[i], 1);
}

// logging_confounding: the log's top-arm users have a higher true baseline (arm 0's true revenue) than its control
// users (more than without the shock); the trial's arms do not differ.
TEST(Generator, HiddenConfoundingSteersTheLogByAnUnseenBaseline) {
  auto gap = [](double zeta, bool log) {
    data::GeneratorConfig c = test::small_config(60000, 60000, 8, 3);
    c.logging_confounding = zeta;
    Generator g(c);
    Table t;
    g.fill(0, g.rows(), t, 2);
    const int M = t.num_arms;
    double top = 0, ctl = 0, nt = 0, nc = 0;
    for (int64_t i = log ? 60000 : 0, e = log ? 120000 : 60000; i < e; ++i) {
      const double r0 = t.true_revenue[size_t(i * M)];
      if (t.treatment[size_t(i)] == M - 1) top += r0, nt += 1;
      if (t.treatment[size_t(i)] == 0) ctl += r0, nc += 1;
    }
    return top / nt - ctl / nc;
  };
  const double plain = gap(0, true), confounded = gap(2, true);
  EXPECT_GT(confounded, plain + 0.2) << "the shock moves the log's assignment";
  EXPECT_LT(std::abs(gap(2, false)), 0.05) << "the trial stays randomised";
}

TEST(Generator, InversePropensityWeightsAverageToOne) {
  // E[1{t=j} / pi_j(x)] = 1 for every arm when `propensity` is the true logging probability.
  Generator g(test::small_config(0, 300000, 6, 3));
  Table t;
  g.fill(0, g.rows(), t, 2);
  for (int j = 0; j < 3; ++j) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < t.rows; ++i)
      if (t.treatment[i] == j) s += 1 / t.propensity[i], s2 += 1 / (t.propensity[i] * double(t.propensity[i]));
    double mean = s / t.rows, sd = std::sqrt((s2 / t.rows - mean * mean) / t.rows);
    EXPECT_NEAR(mean, 1.0, 5 * sd) << "arm " << j;
  }
}

TEST(Generator, ObservedOutcomesAreUnbiasedForTheTruthInTheRct) {
  Generator g(test::small_config(600000, 0, 6, 3));
  Table t;
  g.fill(0, g.rows(), t, 2);
  const int M = 3;
  for (int j = 0; j < M; ++j) {
    double n = 0, y = 0, y2 = 0, c = 0, c2 = 0, truth_r = 0, truth_c = 0;
    for (int64_t i = 0; i < t.rows; ++i) {
      truth_r += t.true_revenue[i * M + j], truth_c += t.true_cost[i * M + j];
      if (t.treatment[i] != j) continue;
      n += 1, y += t.revenue[i], y2 += double(t.revenue[i]) * t.revenue[i], c += t.cost[i], c2 += double(t.cost[i]) * t.cost[i];
    }
    double my = y / n, mc = c / n;
    EXPECT_NEAR(my, truth_r / t.rows, 5 * std::sqrt((y2 / n - my * my) / n)) << "revenue arm " << j;
    EXPECT_NEAR(mc, truth_c / t.rows, 5 * std::sqrt((c2 / n - mc * mc) / n) + 1e-12) << "cost arm " << j;
  }
}

TEST(Generator, CostsIncreaseWithArmAndMostResponsesDiminish) {
  auto c = test::small_config(50000, 0, 6, 5);
  c.non_diminishing_fraction = 0.2;
  Generator g(c);
  Table t;
  g.fill(0, g.rows(), t, 2);
  const int M = 5;
  double positive = 0, concave = 0;
  for (int64_t i = 0; i < t.rows; ++i) {
    const float* r = &t.true_revenue[i * M];
    const float* k = &t.true_cost[i * M];
    ASSERT_EQ(k[0], 0.f);
    for (int j = 1; j < M; ++j) ASSERT_GT(k[j], k[j - 1]) << "row " << i;
    if (r[M - 1] - r[0] <= 1e-4f || r[0] <= 0) continue;  // users with a positive, unclamped response
    positive += 1;
    concave += (r[1] - r[0]) > (r[2] - r[1]);
  }
  // Convex users (20%) have increasing increments; every other positive responder diminishes.
  double share = concave / positive, sd = std::sqrt(0.16 / positive);
  EXPECT_NEAR(share, 0.8, 5 * sd);
}

TEST(Generator, ConfigIsValidated) {
  Config cfg = Config::from_string("arms: 3\nrct_propensity: [0.5, 0.5, 0.5]\n", "g.yaml");
  EXPECT_THROW(data::GeneratorConfig::from(cfg), ConfigError);
  Config cfg2 = Config::from_string("arms: 3\narm_values: [0, 2, 1]\n", "g.yaml");
  EXPECT_THROW(data::GeneratorConfig::from(cfg2), ConfigError);
  Config cfg3 = Config::from_string("rct_rows: 10\nobservational_rows: 5\nfeatures: 3\n", "g.yaml");
  auto gc = data::GeneratorConfig::from(cfg3);
  EXPECT_EQ(Generator(gc).rows(), 15);
}

// The retail family (family_retail.cpp): a second data-generating process.
static data::GeneratorConfig retail(int64_t rct, int64_t obs, uint64_t seed = 5) {
  data::GeneratorConfig c = data::GeneratorConfig::defaults("retail");
  c.rct_rows = rct, c.observational_rows = obs, c.features = 12, c.seed = seed;
  return c;
}

TEST(GeneratorRetail, RowsArePureFunctionsOfSeedAndIndex) {
  Generator g(retail(3000, 5000));
  Table whole, a, b;
  g.fill(0, 8000, whole, 4);
  g.fill(0, 4100, a, 1);
  g.fill(4100, 3900, b, 3);
  for (int64_t i = 0; i < 8000; ++i) {
    const Table& part = i < 4100 ? a : b;
    const int64_t j = i < 4100 ? i : i - 4100;
    ASSERT_EQ(whole.treatment[i], part.treatment[j]) << i;
    ASSERT_EQ(whole.revenue[i], part.revenue[j]) << i;
    ASSERT_EQ(whole.cost[i], part.cost[j]) << i;
    for (int k = 0; k < 12; ++k) ASSERT_EQ(whole.features[i * 12 + k], part.features[j * 12 + k]);
  }
  EXPECT_EQ(g.meta().arm_names, (std::vector<std::string>{"no_coupon", "coupon_1", "coupon_3", "coupon_7"}));
}

TEST(GeneratorRetail, BasketsOfFiveToTenRedemptionCostsAndUnbiasedTrialOutcomes) {
  Generator g(retail(400000, 0));
  Table t;
  g.fill(0, g.rows(), t, 2);
  const int M = 4;
  const double value[M] = {0, 1, 3, 7};
  for (int j = 0; j < M; ++j) {
    double n = 0, y = 0, y2 = 0, c = 0, c2 = 0, truth_r = 0, truth_c = 0;
    for (int64_t i = 0; i < t.rows; ++i) {
      truth_r += t.true_revenue[i * M + j], truth_c += t.true_cost[i * M + j];
      if (t.treatment[i] != j) continue;
      // The coupon's value is paid exactly when it is redeemed.
      ASSERT_TRUE(t.cost[i] == 0.f || t.cost[i] == float(value[j])) << "row " << i << " cost " << t.cost[i];
      n += 1, y += t.revenue[i], y2 += double(t.revenue[i]) * t.revenue[i], c += t.cost[i], c2 += double(t.cost[i]) * t.cost[i];
    }
    const double my = y / n, mc = c / n, tr = truth_r / t.rows;
    EXPECT_NEAR(my, tr, 5 * std::sqrt((y2 / n - my * my) / n)) << "revenue arm " << j;
    EXPECT_NEAR(mc, truth_c / t.rows, 5 * std::sqrt((c2 / n - mc * mc) / n) + 1e-12) << "cost arm " << j;
    EXPECT_GT(tr, 5.0) << "a basket of 5-10 per user";
    EXPECT_LT(tr, 10.0);
  }
  // Heavy tail: the observed spend's 99.9th percentile is many times its mean.
  std::vector<float> y(t.revenue);
  std::nth_element(y.begin(), y.begin() + long(0.999 * double(y.size())), y.end());
  EXPECT_GT(y[size_t(0.999 * double(y.size()))], 6 * 7.0);
  // Heterogeneous response: some users lose revenue under the biggest coupon, most gain under the smallest.
  double neg = 0, pos = 0;
  for (int64_t i = 0; i < t.rows; ++i) {
    neg += t.true_revenue[i * M + 3] < t.true_revenue[i * M];
    pos += t.true_revenue[i * M + 1] > t.true_revenue[i * M];
  }
  EXPECT_GT(neg / double(t.rows), 0.05);
  EXPECT_GT(pos / double(t.rows), 0.6);
}

TEST(GeneratorRetail, TheLogOverstatesTheBigCouponsAndItsPropensitiesAreExact) {
  Generator g(retail(0, 300000));
  Table t;
  g.fill(0, g.rows(), t, 2);
  const int M = 4;
  double n = 0, y = 0, truth = 0;
  std::vector<double> ipw(M, 0);
  for (int64_t i = 0; i < t.rows; ++i) {
    truth += t.true_revenue[i * M + 3];
    ipw[size_t(t.treatment[i])] += 1 / double(t.propensity[i]);
    if (t.treatment[i] == 3) n += 1, y += t.revenue[i];
  }
  EXPECT_GT(y / n, 1.1 * truth / t.rows) << "naive mean of the log's biggest coupon against its true mean";
  for (int j = 0; j < M; ++j) EXPECT_NEAR(ipw[size_t(j)] / t.rows, 1.0, 0.03) << "E[1{t=j} / pi_j(x)] = 1, arm " << j;
}

TEST(GeneratorRetail, FamilyKeysAreChecked) {
  EXPECT_THROW(data::GeneratorConfig::from(Config::from_string("family: grocery\n", "g.yaml")), ConfigError);
  EXPECT_THROW(data::GeneratorConfig::from(Config::from_string("family: retail\ndiminishing_rate: 2\n", "g.yaml")),
               ConfigError);
  const auto c = data::GeneratorConfig::from(Config::from_string("family: retail\narms: 3\n", "g.yaml"));
  EXPECT_EQ(c.arms, 3);
  EXPECT_DOUBLE_EQ(c.uplift_scale, 1.5);
  EXPECT_EQ(Generator(c).meta().arm_names, (std::vector<std::string>{"no_coupon", "coupon_1", "coupon_3"}));
}

// label_noise: exactly the drawn share of revenue labels changes (by the mean-one log-normal factor), nothing else does,
// and the labels stay unbiased for the truth (the factor has mean 1: checked on the corrupted rows' log factor).
TEST(Generator, LabelNoiseCorruptsTheDrawnShareOfRevenueLabelsOnly) {
  data::GeneratorConfig clean = test::small_config(200000, 0, 6, 3), noisy = clean;
  noisy.label_noise = 0.3, noisy.label_noise_sigma = 1.0;
  Table a, b;
  Generator(clean).fill(0, 200000, a, 2);
  Generator(noisy).fill(0, 200000, b, 2);
  double changed = 0, positive = 0, log_sum = 0, log_sq = 0;
  for (int64_t i = 0; i < a.rows; ++i) {
    ASSERT_EQ(a.treatment[i], b.treatment[i]);
    ASSERT_EQ(a.cost[i], b.cost[i]);
    ASSERT_EQ(a.true_revenue[i * 3 + 1], b.true_revenue[i * 3 + 1]);
    if (a.revenue[i] > 0) {
      positive += 1;
      if (a.revenue[i] != b.revenue[i]) {
        changed += 1;
        const double l = std::log(double(b.revenue[i]) / a.revenue[i]);
        log_sum += l, log_sq += l * l;
      }
    }
  }
  const double share = changed / positive, se = std::sqrt(0.3 * 0.7 / positive);
  EXPECT_NEAR(share, 0.3, 5 * se);
  // log factor ~ N(-s^2/2, s^2) with s = 1: mean -0.5, variance 1 (so E[factor] = 1)
  const double mean = log_sum / changed, var = log_sq / changed - mean * mean;
  EXPECT_NEAR(mean, -0.5, 5 / std::sqrt(changed));
  EXPECT_NEAR(var, 1.0, 0.05);
  noisy.label_noise = 1.5;
  EXPECT_THROW(noisy.validate(), ConfigError);
}
