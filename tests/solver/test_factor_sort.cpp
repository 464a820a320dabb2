// \brief Factor sort (DHCL's comparisons-only allocation): equal to the MCKP dual path on factor_scores, within the
// LP bound of brute force on tiny instances, threshold policy, monotone rules, step costs and errors.
#include <gtest/gtest.h>  // for TEST

#include <algorithm>  // for std::max, std::sort, std::min
#include <cmath>      // for std::pow, std::isinf
#include <vector>     // for std::vector

#include "core/error.h"              // for ConfigError, DataError
#include "core/rng.h"                // for Rng
#include "metrics/factor_scores.h"   // for factor_scores, rct_step_costs
#include "metrics/rct_sample.h"      // for make_sample
#include "solver/factor_sort.h"      // for FactorSort, factor_allocate
#include "solver/mckp.h"             // for DualPath

using namespace dfcl;
using solver::FactorMonotone;
using solver::FactorSort;

namespace {

struct Factors {
  int64_t n;
  int steps;
  std::vector<float> theta;
  std::vector<double> d;
};

// grid: factors on a 1/64 grid and integer step costs, so every sum and slope is exact in float (ties are common);
// else continuous factors and costs. monotone: each row non-increasing (strictly on the grid).
Factors random_factors(uint64_t seed, int64_t n, int steps, bool grid, bool monotone) {
  Rng g(seed, 11);
  Factors f{n, steps, std::vector<float>(size_t(n) * steps), std::vector<double>(steps)};
  // Dyadic costs: cumulative costs are exact in float, so budgets at the very end (q = 1) agree with the dual path.
  for (int k = 0; k < steps; ++k) f.d[k] = grid ? double(1 + int(g.uniform() * 4)) : double(2 + int(g.uniform() * 22)) / 8;
  for (int64_t i = 0; i < n; ++i) {
    float* row = &f.theta[size_t(i) * steps];
    for (int k = 0; k < steps; ++k)
      row[k] = grid ? float(int(g.uniform() * 160) - 32) / 64.0f : float(g.uniform() * 2.5 - 0.5);
    if (monotone) {
      std::sort(row, row + steps, [](float a, float b) { return a > b; });
      if (grid)  // strictly decreasing: the dual path's hull would merge equal adjacent slopes into one segment
        for (int k = 1; k < steps; ++k) row[k] = std::min(row[k], row[k - 1] - 1.0f / 64);
    }
  }
  return f;
}

// Integer optimum of the MCKP on factor_scores' tables by enumerating all (steps+1)^n assignments.
double brute_force(const Factors& f, double budget) {
  const int m = f.steps + 1;
  double best = -INFINITY;
  const int64_t total = static_cast<int64_t>(std::pow(m, f.n));
  for (int64_t code = 0; code < total; ++code) {
    int64_t v = code;
    double sp = 0, rv = 0;
    for (int64_t i = 0; i < f.n; ++i, v /= m) {
      const int a = int(v % m);
      for (int k = 0; k < a; ++k) sp += f.d[k], rv += double(f.theta[i * f.steps + k]) * f.d[k];
    }
    if (sp <= budget + 1e-9) best = std::max(best, rv);
  }
  return best;
}

}  // namespace

TEST(FactorSort, EqualsTheDualPathOnFactorScoresForMonotoneFactors) {
  for (uint64_t seed = 0; seed < 24; ++seed) {
    const bool grid = seed % 2 == 0;
    const int steps = 1 + int(seed % 4);
    Factors f = random_factors(seed, 300, steps, grid, true);
    FactorSort fs(f.theta.data(), f.n, f.steps, f.d);
    EXPECT_EQ(fs.non_monotone_users(), 0);
    metrics::ScoreTable table = metrics::factor_scores(f.theta.data(), f.n, f.steps, f.d);
    solver::DualPath path(table.view(), 1);
    ASSERT_NEAR(fs.max_spend(), path.max_spend(), 1e-6 * path.max_spend()) << "seed " << seed;
    for (double q : {0.0, 0.01, 0.1, 0.37, 0.5, 0.77, 0.999, 1.0, 1.5}) {
      const double budget = q * path.max_spend();
      const auto a = fs.solve(budget);
      const auto b = path.solve(budget);
      ASSERT_EQ(a.arm, b.arm) << "seed " << seed << " budget fraction " << q;
      EXPECT_NEAR(a.spend, b.spend, 1e-9 * (1 + b.spend)) << "seed " << seed;
      EXPECT_NEAR(a.value, b.revenue, 1e-5 * (1 + b.revenue)) << "seed " << seed;
      EXPECT_EQ(a.saturated, b.saturated);
      if (grid) {  // DualPath's λ*: the first segment that does not fit
        EXPECT_EQ(a.next_lambda, b.lambda) << "seed " << seed << " q " << q;
      } else {
        EXPECT_NEAR(a.next_lambda, b.lambda, 1e-6) << "seed " << seed << " q " << q;
      }
      EXPECT_LE(a.spend, budget);
      if (a.steps_taken > 0) {
        EXPECT_GE(a.lambda, a.next_lambda);
      }
    }
  }
}

TEST(FactorSort, PoolingNonMonotoneUsersEqualsTheDualPathsHull) {
  for (uint64_t seed = 100; seed < 112; ++seed) {
    const int steps = 2 + int(seed % 3);
    Factors f = random_factors(seed, 400, steps, false, false);
    FactorSort fs(f.theta.data(), f.n, f.steps, f.d, FactorMonotone::kPool);
    EXPECT_GT(fs.non_monotone_users(), 0);
    metrics::ScoreTable table = metrics::factor_scores(f.theta.data(), f.n, f.steps, f.d);
    solver::DualPath path(table.view(), 1);
    for (double q : {0.05, 0.3, 0.6, 0.95}) {
      const double budget = q * path.max_spend();
      const auto a = fs.solve(budget);
      const auto b = path.solve(budget);
      ASSERT_EQ(a.arm, b.arm) << "seed " << seed << " q " << q;
      EXPECT_NEAR(a.value, b.revenue, 1e-5 * (1 + b.revenue));
      EXPECT_NEAR(a.next_lambda, b.lambda, 1e-5 * (1 + b.lambda));
    }
    // Effective factors are non-increasing per user and d-weighted means of the original ones over each pooled run.
    for (int64_t i = 0; i < f.n; ++i) {
      double orig = 0, eff = 0;
      for (int k = 0; k < steps; ++k) {
        if (k > 0) {
          ASSERT_LE(fs.effective_factor(i, k), fs.effective_factor(i, k - 1));
        }
        orig += f.theta[i * steps + k] * f.d[k], eff += fs.effective_factor(i, k) * f.d[k];
      }
      ASSERT_NEAR(orig, eff, 1e-5 * (1 + std::abs(orig)));  // pooling keeps each run's total value
    }
  }
}

TEST(FactorSort, WithinTheLpBoundOfBruteForceOnTinyInstances) {
  int checked = 0, exact = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const int64_t n = 1 + int64_t(seed % 5);
    const int steps = 1 + int(seed / 5 % 3);
    Factors f = random_factors(seed + 1000, n, steps, seed % 3 == 0, seed % 2 == 0);  // pool on non-monotone rows
    FactorSort fs(f.theta.data(), f.n, f.steps, f.d);
    std::vector<double> budgets{0, 0.5 * fs.max_spend(), fs.max_spend() + 1};
    for (int p = 1; p <= 8; ++p) {
      const double b = fs.max_spend() * p / 8.0;
      const auto a = fs.solve(b);
      budgets.push_back(a.spend);        // exactly a prefix's spend: the dual prefix is optimal there
      budgets.push_back(a.spend + 0.3);  // strictly inside a step
    }
    for (double budget : budgets) {
      const auto a = fs.solve(budget);
      const double opt = brute_force(f, budget);
      ASSERT_LE(a.spend, budget + 1e-12);
      // The taken arms' value, re-scored from the original factors (pooled blocks keep their run's total value).
      double v = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int k = 0; k < a.arm[i]; ++k) v += double(f.theta[i * steps + k]) * f.d[k];
      ASSERT_NEAR(v, a.value, 1e-5 * (1 + std::abs(v)));
      ASSERT_LE(a.value, opt + 1e-5) << "seed " << seed << " budget " << budget;
      // LP bound: the fitting fraction of the first block not taken, at its factor next_lambda.
      const double lp = a.value + (a.saturated ? 0.0 : a.next_lambda * (budget - a.spend));
      ASSERT_GE(lp, opt - 1e-5) << "seed " << seed << " budget " << budget;
      if (budget == a.spend) {
        ASSERT_NEAR(a.value, opt, 1e-5) << "seed " << seed;
        ++exact;
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 200 * 19);
  EXPECT_GT(exact, 1000);
}

TEST(FactorSort, ThresholdPolicyAndRunningMinimum) {
  Factors f = random_factors(7, 2000, 3, false, true);
  FactorSort fs(f.theta.data(), f.n, f.steps, f.d);
  for (double q : {0.1, 0.4, 0.8}) {
    const auto a = fs.solve(q * fs.max_spend());
    ASSERT_FALSE(a.saturated);
    EXPECT_EQ(fs.policy_at(a.lambda), a.arm);  // continuous factors: no tie at λ
    // arm_i = max{k : θ_ik >= λ}, read straight off the factors.
    for (int64_t i = 0; i < f.n; ++i) {
      int k = 0;
      while (k < f.steps && f.theta[i * f.steps + k] > 0 && f.theta[i * f.steps + k] >= a.lambda) ++k;
      ASSERT_EQ(a.arm[i], k) << "user " << i;
    }
  }
  // running_min: θ' = running minimum; the result is the monotone factor sort on θ'.
  Factors g = random_factors(8, 500, 4, false, false);
  Factors h = g;
  for (int64_t i = 0; i < h.n; ++i)
    for (int k = 1; k < h.steps; ++k)
      h.theta[i * h.steps + k] = std::min(h.theta[i * h.steps + k], h.theta[i * h.steps + k - 1]);
  FactorSort rm(g.theta.data(), g.n, g.steps, g.d, FactorMonotone::kRunningMin), ref(h.theta.data(), h.n, h.steps, h.d);
  for (double q : {0.2, 0.7}) {
    const auto a = rm.solve(q * ref.max_spend()), b = ref.solve(q * ref.max_spend());
    EXPECT_EQ(a.arm, b.arm);
    EXPECT_DOUBLE_EQ(a.spend, b.spend);
  }
  EXPECT_EQ(solver::parse_factor_monotone("running_min", "x"), FactorMonotone::kRunningMin);
  EXPECT_THROW(solver::parse_factor_monotone("pav", "x"), ConfigError);
}

TEST(FactorSort, TiesEdgesAndErrors) {
  // Two users with equal factors: lower user first; a user's steps in order; steps with θ <= 0 never taken.
  std::vector<float> th{0.5f, 0.25f, 0.5f, -0.1f, 0.0f, 0.0f};
  FactorSort fs(th.data(), 3, 2, {1.0, 2.0});
  auto a = fs.solve(1.5);
  EXPECT_EQ(a.arm, (std::vector<uint8_t>{1, 0, 0}));
  EXPECT_EQ(a.lambda, 0.5);
  EXPECT_EQ(a.next_lambda, 0.5);
  a = fs.solve(100);
  EXPECT_TRUE(a.saturated);
  EXPECT_EQ(a.arm, (std::vector<uint8_t>{2, 1, 0}));
  EXPECT_DOUBLE_EQ(a.spend, 4);
  EXPECT_DOUBLE_EQ(a.value, 0.5 + 0.5 + 0.5);
  EXPECT_EQ(a.next_lambda, 0);
  a = fs.solve(0.5);
  EXPECT_EQ(a.steps_taken, 0);
  EXPECT_TRUE(std::isinf(a.lambda));
  EXPECT_EQ(solver::factor_allocate(th.data(), 3, 2, {1.0, 2.0}, 3.0).arm, (std::vector<uint8_t>{1, 1, 0}));
  // Pooling: factors (0.2, 0.6) with d = (1, 1) pool to 0.4, both steps at once.
  std::vector<float> up{0.2f, 0.6f};
  FactorSort p(up.data(), 1, 2, {1.0, 1.0});
  EXPECT_EQ(p.non_monotone_users(), 1);
  EXPECT_FLOAT_EQ(p.effective_factor(0, 0), 0.4f);
  EXPECT_EQ(p.solve(1.5).arm[0], 0);  // the pooled block costs 2
  EXPECT_EQ(p.solve(2).arm[0], 2);
  // Errors name the culprit.
  std::vector<float> bad{0.1f, NAN};
  EXPECT_THROW(FactorSort(bad.data(), 1, 2, {1.0, 1.0}), DataError);
  EXPECT_THROW(FactorSort(up.data(), 1, 2, {1.0, 0.0}), DataError);
  EXPECT_THROW(FactorSort(up.data(), 1, 2, {1.0}), DataError);
  EXPECT_THROW(fs.solve(-1), ConfigError);
  EXPECT_THROW(metrics::factor_scores(up.data(), 1, 2, {1.0, -1.0}), DataError);
}

TEST(FactorScores, ClosedFormAndRctStepCosts) {
  std::vector<float> th{0.5f, 0.25f, 2.0f, -1.0f};
  auto t = metrics::factor_scores(th.data(), 2, 2, {2.0, 4.0});
  EXPECT_EQ(t.m, 3);
  EXPECT_EQ(t.r, (std::vector<float>{0, 1, 2, 0, 4, 0}));
  EXPECT_EQ(t.c, (std::vector<float>{0, 2, 6, 0, 2, 6}));
  // d_k = mean cost of arm k - mean cost of arm k-1.
  const std::vector<int32_t> arm{0, 1, 2, 0, 1, 2}, arm2{0, 1, 0, 1};
  const std::vector<float> zero(6, 0.0f), cost{1, 2, 5, 1, 4, 7}, flat_cost(4, 1.0f);
  auto s = metrics::make_sample(arm, zero, cost, 3);  // views: the vectors must outlive the sample
  auto d = metrics::rct_step_costs(s);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_DOUBLE_EQ(d[0], 2);
  EXPECT_DOUBLE_EQ(d[1], 3);
  const std::vector<float> zero4(4, 0.0f);
  auto flat = metrics::make_sample(arm2, zero4, flat_cost, 2);
  EXPECT_THROW(metrics::rct_step_costs(flat), DataError);
}
