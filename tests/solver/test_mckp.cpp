// \brief MCKP solver: brute force on tiny instances, dual optimality, edge cases, determinism.
#include <gtest/gtest.h>  // for TEST

#include <cmath>  // for std::pow

#include "core/error.h"   // for ConfigError, DataError
#include "core/rng.h"     // for Rng
#include "solver/hull.h"  // for row_hull
#include "solver/mckp.h"  // for DualPath

using namespace dfcl;
using solver::DualPath;
using solver::Scores;

namespace {

struct Instance {
  int64_t n;
  int m;
  std::vector<float> r, c;
  Scores scores() const { return {n, m, r.data(), c.data()}; }
};

// Small integers make ties, equal costs and zero-cost arms common.
Instance random_instance(uint64_t seed, int64_t n, int m, bool integers) {
  Rng g(seed, 7);
  Instance x{n, m, std::vector<float>(n * m), std::vector<float>(n * m)};
  for (int64_t i = 0; i < n * m; ++i) {
    if (integers) {
      x.r[i] = float(int(g.uniform() * 7) - 2);  // -2..4: negative uplift happens
      x.c[i] = float(int(g.uniform() * 4));      // 0..3: zero-cost arms and equal costs happen
    } else {
      x.r[i] = float(g.uniform() * 10 - 2);
      x.c[i] = float(g.uniform() * 5);
    }
  }
  return x;
}

// Integer optimum by enumerating all m^n assignments; -inf when nothing is feasible.
double brute_force(const Instance& x, double budget) {
  double best = -INFINITY;
  std::vector<int> z(x.n, 0);
  const int64_t total = static_cast<int64_t>(std::pow(x.m, x.n));
  for (int64_t code = 0; code < total; ++code) {
    int64_t v = code;
    double sp = 0, rv = 0;
    for (int64_t i = 0; i < x.n; ++i, v /= x.m) {
      int j = int(v % x.m);
      sp += x.c[i * x.m + j], rv += x.r[i * x.m + j];
    }
    if (sp <= budget + 1e-9) best = std::max(best, rv);
  }
  return best;
}

}  // namespace

TEST(Hull, KeepsOnlyArmsAChoosablePolicyCanPick) {
  // Arms (cost, revenue): (0,1) (1,3) (2,3.5) (2,4) (3,4.2) (4,5): (2,3.5) is dominated by (2,4);
  // (3,4.2) is under the segment (2,4)-(4,5) (slope 0.2 < 0.5); slopes 2 > 1 > 0.5 keep the rest.
  float r[] = {1, 3, 3.5f, 4, 4.2f, 5}, c[] = {0, 1, 2, 2, 3, 4};
  uint8_t h[6];
  int n = solver::row_hull(r, c, 6, h);
  ASSERT_EQ(n, 4);
  EXPECT_EQ(h[0], 0);
  EXPECT_EQ(h[1], 1);
  EXPECT_EQ(h[2], 3);
  EXPECT_EQ(h[3], 5);
  // Collinear middle point (1,2) between (0,1) and (2,3) is dropped; a costlier, poorer arm is dropped.
  float r2[] = {1, 2, 3, 0}, c2[] = {0, 1, 2, 5};
  EXPECT_EQ(solver::row_hull(r2, c2, 4, h), 2);
  EXPECT_EQ(h[1], 2);
}

TEST(DualPath, WithinTheStatedBoundOfTheIntegerOptimumOnTinyInstances) {
  int checked = 0;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    const int64_t n = 1 + seed % 8;
    const int m = 1 + int(seed / 8 % 3);
    Instance x = random_instance(seed, n, m, seed % 2 == 0);
    DualPath path(x.scores(), 1);
    for (int q = 0; q <= 8; ++q) {
      double budget = path.min_spend() + (path.max_spend() - path.min_spend()) * q / 8.0 + (q == 3 ? 0.37 : 0.0);
      auto a = path.solve(budget);
      double opt = brute_force(x, budget);
      ASSERT_LE(a.spend, budget + 1e-9) << "seed " << seed << " q " << q;     // feasible
      ASSERT_LE(a.revenue, opt + 1e-9) << "seed " << seed;                    // cannot beat the optimum
      ASSERT_GE(a.lp_bound, opt - 1e-9) << "seed " << seed << " q " << q;     // LP bound is an upper bound
      ASSERT_LE(opt - a.revenue, a.gap_bound + 1e-9) << "seed " << seed;      // stated gap holds
      // The gap is at most one user's revenue range (spec 2.2's max_ij r_ij when revenues are >= 0 and arm 0 is free).
      double range = 0;
      for (int64_t i = 0; i < n; ++i) {
        auto [lo, hi] = std::minmax_element(&x.r[i * m], &x.r[i * m] + m);
        range = std::max(range, double(*hi) - *lo);
      }
      ASSERT_LE(a.gap_bound, range + 1e-9);
      // With greedy fill the allocation stays feasible and can only gain.
      solver::SolveOptions o;
      o.greedy_fill = true;
      auto f = path.solve(budget, o);
      double sp = 0, rv = 0;
      for (int64_t i = 0; i < n; ++i) sp += x.c[i * m + f.arm[i]], rv += x.r[i * m + f.arm[i]];
      ASSERT_LE(sp, budget + 1e-9);
      ASSERT_NEAR(rv, f.revenue + f.fill_revenue, 1e-9);
      ASSERT_LE(rv, opt + 1e-9);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 300 * 9);
}

TEST(DualPath, AssignmentIsTheDualPolicyAtLambdaStar) {
  Instance x = random_instance(11, 5000, 5, false);
  DualPath path(x.scores(), 2);
  const double budget = path.min_spend() + 0.3 * (path.max_spend() - path.min_spend());
  auto a = path.solve(budget);
  ASSERT_GT(a.lambda, 0);
  for (int64_t i = 0; i < x.n; ++i) {
    double best = -INFINITY;
    for (int j = 0; j < x.m; ++j) best = std::max(best, double(x.r[i * 5 + j]) - a.lambda * x.c[i * 5 + j]);
    double mine = double(x.r[i * 5 + a.arm[i]]) - a.lambda * x.c[i * 5 + a.arm[i]];
    ASSERT_NEAR(mine, best, 1e-6 * (1 + std::abs(best))) << "user " << i;  // argmax up to the one binding tie
  }
  // The LP bound is G(lambda*) = lambda* B + sum_i max_j (r_ij - lambda* c_ij) (strong duality).
  double g = a.lambda * budget;
  for (int64_t i = 0; i < x.n; ++i) {
    double best = -INFINITY;
    for (int j = 0; j < x.m; ++j) best = std::max(best, double(x.r[i * 5 + j]) - a.lambda * x.c[i * 5 + j]);
    g += best;
  }
  EXPECT_NEAR(a.lp_bound, g, 1e-9 * std::abs(g));
}

TEST(DualPath, CurveMatchesBudgetQueriesAndIsConcave) {
  Instance x = random_instance(5, 3000, 4, false);
  DualPath path(x.scores(), 2);
  auto curve = path.curve();
  ASSERT_EQ(int64_t(curve.size()), path.segments() + 1);
  for (size_t k = 1; k < curve.size(); ++k) {
    ASSERT_GT(curve[k].spend, curve[k - 1].spend);
    ASSERT_LE(curve[k].lambda, curve[k - 1].lambda);  // slopes decrease: the curve is concave
  }
  for (size_t k : {size_t(0), curve.size() / 3, curve.size() / 2, curve.size() - 1}) {
    auto a = path.solve(curve[k].spend + 1e-9);
    EXPECT_NEAR(a.revenue, curve[k].revenue, 1e-6) << k;
  }
  auto thin = path.curve(50);
  EXPECT_LE(thin.size(), 51u);
  EXPECT_DOUBLE_EQ(thin.back().spend, curve.back().spend);
}

TEST(DualPath, BeatsOrMatchesBisectionAndNeverDependsOnThreads) {
  Instance x = random_instance(3, 20000, 5, false);
  DualPath one(x.scores(), 1), four(x.scores(), 4);
  for (double f : {0.05, 0.2, 0.6}) {
    double budget = one.min_spend() + f * (one.max_spend() - one.min_spend());
    auto a = one.solve(budget), b = four.solve(budget);
    ASSERT_EQ(a.arm, b.arm);
    ASSERT_EQ(a.revenue, b.revenue);
    auto bis = solver::solve_bisection(x.scores(), budget);
    EXPECT_LE(bis.spend, budget);
    EXPECT_GE(a.revenue, bis.revenue - 1e-9);
    EXPECT_NEAR(a.revenue, bis.revenue, a.gap_bound + 1e-6 * a.revenue);
  }
}

TEST(DualPath, EdgeCases) {
  // All-equal costs: one hull point per user, no segments; any budget >= spend is saturated.
  Instance eq{3, 3, {1, 5, 2, 0, 0, 0, -1, -3, -2}, {1, 1, 1, 1, 1, 1, 1, 1, 1}};
  DualPath p(eq.scores(), 1);
  EXPECT_EQ(p.segments(), 0);
  auto a = p.solve(3);
  EXPECT_TRUE(a.saturated);
  EXPECT_EQ(a.arm, (std::vector<uint8_t>{1, 0, 0}));  // best revenue; ties to the lower arm
  EXPECT_DOUBLE_EQ(a.revenue, 4);
  // Below the minimum spend: a clear error, or a labelled clamp.
  try {
    p.solve(2.5);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("below the minimum possible spend 3"), std::string::npos) << e.what();
  }
  solver::SolveOptions o;
  o.clamp_below_min = true;
  auto cl = p.solve(2.5, o);
  EXPECT_TRUE(cl.clamped);
  EXPECT_FALSE(cl.note.empty());
  // Ties between identical arms and between users at one lambda are broken the same way every time.
  Instance tie{4, 3, {0, 2, 2, 0, 2, 2, 0, 2, 2, 0, 2, 2}, {0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1}};
  DualPath t(tie.scores(), 1);
  auto b = t.solve(2.5);
  EXPECT_EQ(b.arm, (std::vector<uint8_t>{1, 1, 0, 0}));  // lower users first, lower arm index
  EXPECT_DOUBLE_EQ(b.spend, 2);
  EXPECT_DOUBLE_EQ(b.lp_bound, 5);  // half of the third user's segment
  // Non-finite scores are rejected with the user and arm.
  Instance bad{2, 2, {0, 1, 0, NAN}, {0, 1, 0, 1}};
  try {
    DualPath q(bad.scores(), 1);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("user 1, arm 1"), std::string::npos) << e.what();
  }
}

TEST(Bisection, StartsAboveEveryBreakpointWhateverTheSignsOfControlRevenueAndCost) {
  // Control earns less than nothing and costs something: max r/c is 0 here, so a bracket from r/c alone (the old
  // 2 max r/c + 1 = 1) lies below the breakpoints 5 and 4 and rejected this feasible budget.
  Instance neg{2, 2, {-5, 0, -5, -1}, {1, 2, 1, 2}};
  const double budget = 3;  // the first user on arm 1 (cost 2, revenue 0), the second on control (1, -5)
  auto a = solver::solve_bisection(neg.scores(), budget);
  EXPECT_LE(a.spend, budget);
  EXPECT_DOUBLE_EQ(a.revenue, brute_force(neg, budget));
  EXPECT_GE(a.lp_bound, brute_force(neg, budget) - 1e-9);
  // On random tiny instances with negative revenues and costly controls: feasible budgets are never rejected, and the
  // Lagrangian bound it reports lies above the brute-force optimum.
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Instance x = random_instance(seed + 100, 5, 3, true);
    for (int64_t i = 0; i < x.n; ++i) x.c[i * x.m] += 1;  // every control costs 1 or more
    DualPath p(x.scores(), 1);
    for (double f : {0.0, 0.3, 0.7, 1.0}) {
      const double budget = p.min_spend() + f * (p.max_spend() - p.min_spend());
      const double opt = brute_force(x, budget);
      auto b = solver::solve_bisection(x.scores(), budget);
      ASSERT_LE(b.spend, budget + 1e-9) << seed;
      EXPECT_LE(b.revenue, opt + 1e-9) << seed;
      EXPECT_GE(b.lp_bound, opt - 1e-6) << "seed " << seed << " budget " << budget;
      EXPECT_NEAR(b.gap_bound, b.lp_bound - b.revenue, 1e-9);
    }
  }
}
