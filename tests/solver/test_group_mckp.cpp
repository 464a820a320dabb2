// \brief The group programme (solver/group_mckp.h): S2's branch and bound against brute force on every small instance
// and against GLPK's MIP optimum at K = 200, M = 5; S1's LP against GLPK's LP, with at most one split group.
#include <glpk.h>         // for glp_intopt
#include <gtest/gtest.h>  // for TEST

#include <cmath>  // for std::pow

#include "core/error.h"         // for ConfigError
#include "core/rng.h"           // for Rng
#include "solver/group_mckp.h"  // for solve_groups_exact, solve_groups_lp

using namespace dfcl;
using solver::GroupProblem;

namespace {

// Groups of random sizes; cost rising with the arm, concave noisy value (some arms dominated, some value losses).
GroupProblem random_problem(int k, int m, uint64_t seed, bool ties = false) {
  Rng g(seed, 7);
  GroupProblem p;
  p.k = k, p.m = m;
  p.value.resize(size_t(k * m)), p.cost.resize(size_t(k * m));
  for (int q = 0; q < k; ++q) {
    const double size = 50 + 400 * g.uniform();
    for (int j = 0; j < m; ++j) {
      double c = j == 0 ? 0.02 * g.uniform() : j * (0.5 + g.uniform());
      double v = 3 * (1 - std::exp(-0.7 * j)) * g.uniform() + 0.3 * g.normal();
      if (ties) c = std::round(c * 2) / 2, v = std::round(v * 2) / 2;  // exact ties in cost and value
      p.cost[size_t(q * m + j)] = size * c, p.value[size_t(q * m + j)] = size * v;
    }
  }
  return p;
}

struct Brute {
  double value = -1e300, cost = 0;
  bool feasible = false;
};
Brute brute_force(const GroupProblem& p, double budget) {
  Brute b;
  const int64_t total = int64_t(std::pow(p.m, p.k));
  // The solver's slack on spend (rounding of sums of k costs, group_mckp.cpp): a plan at the budget in exact
  // arithmetic may sum to a hair above it.
  double scale = std::abs(budget);
  for (double c : p.cost) scale = std::max(scale, std::abs(c));
  const double slack = 1e-12 * p.k * std::max(1.0, scale);
  for (int64_t code = 0; code < total; ++code) {
    double v = 0, c = 0;
    int64_t x = code;
    for (int g = 0; g < p.k; ++g, x /= p.m) {
      const int j = int(x % p.m);
      v += p.value[size_t(g * p.m + j)], c += p.cost[size_t(g * p.m + j)];
    }
    if (c <= budget + slack && v > b.value) b.value = v, b.cost = c, b.feasible = true;
  }
  return b;
}

// GLPK on the same programme: binary (MIP) or relaxed (LP) x_gj.
double glpk_groups(const GroupProblem& p, double budget, bool integer) {
  glp_term_out(GLP_OFF);
  glp_prob* lp = glp_create_prob();
  glp_set_obj_dir(lp, GLP_MAX);
  glp_add_rows(lp, p.k + 1);
  for (int g = 1; g <= p.k; ++g) glp_set_row_bnds(lp, g, GLP_FX, 1.0, 1.0);
  glp_set_row_bnds(lp, p.k + 1, GLP_UP, 0.0, budget);
  glp_add_cols(lp, p.k * p.m);
  std::vector<int> ia{0}, ja{0};
  std::vector<double> ar{0};
  for (int g = 0; g < p.k; ++g)
    for (int j = 0; j < p.m; ++j) {
      const int col = g * p.m + j + 1;
      glp_set_col_kind(lp, col, integer ? GLP_BV : GLP_CV);
      if (!integer) glp_set_col_bnds(lp, col, GLP_DB, 0.0, 1.0);
      glp_set_obj_coef(lp, col, p.value[size_t(col - 1)]);
      ia.push_back(g + 1), ja.push_back(col), ar.push_back(1.0);
      ia.push_back(p.k + 1), ja.push_back(col), ar.push_back(p.cost[size_t(col - 1)]);
    }
  glp_load_matrix(lp, int(ia.size()) - 1, ia.data(), ja.data(), ar.data());
  glp_smcp sm;
  glp_init_smcp(&sm);
  sm.presolve = GLP_ON;
  double obj = NAN;
  if (!integer) {
    if (glp_simplex(lp, &sm) == 0 && glp_get_status(lp) == GLP_OPT) obj = glp_get_obj_val(lp);
  } else {
    glp_iocp io;
    glp_init_iocp(&io);
    io.presolve = GLP_ON;
    io.mip_gap = 0.0;
    if (glp_intopt(lp, &io) == 0 && glp_mip_status(lp) == GLP_OPT) obj = glp_mip_obj_val(lp);
  }
  glp_delete_prob(lp);
  return obj;
}

double plan_value(const GroupProblem& p, const std::vector<int>& arm, double* cost) {
  double v = 0;
  *cost = 0;
  for (int g = 0; g < p.k; ++g) v += p.value[size_t(g * p.m + arm[size_t(g)])], *cost += p.cost[size_t(g * p.m + arm[size_t(g)])];
  return v;
}

}  // namespace

TEST(GroupProgramme, ExactEqualsBruteForceOnEverySmallInstance) {
  int cases = 0, lp_strict = 0;
  for (int k = 1; k <= 6; ++k)
    for (int m = 1; m <= 3; ++m)
      for (uint64_t seed = 0; seed < 12; ++seed)
        for (double f : {0.0, 0.05, 0.3, 0.6, 0.9, 1.0, 1.3}) {
          const GroupProblem p = random_problem(k, m, seed * 100 + uint64_t(k * 10 + m), seed % 3 == 0);
          const double lo = p.min_cost(), hi = p.max_useful_cost();
          const double budget = lo + f * (hi - lo);
          const Brute b = brute_force(p, budget);
          ASSERT_TRUE(b.feasible);
          const solver::GroupPlan s = solver::solve_groups_exact(p, budget);
          double cost = 0;
          const double v = plan_value(p, s.arm, &cost);
          ASSERT_TRUE(s.optimal);
          EXPECT_NEAR(s.value, b.value, 1e-9 * std::max(1.0, std::abs(b.value))) << k << "x" << m << " seed " << seed;
          EXPECT_NEAR(v, s.value, 1e-9 * std::max(1.0, std::abs(v)));  // the reported value is the plan's
          EXPECT_NEAR(cost, s.cost, 1e-9 * std::max(1.0, cost));
          EXPECT_LE(cost, budget + 1e-11 * std::max(1.0, budget) * k);
          EXPECT_EQ(s.gap, 0.0);
          // S1's LP bounds S2 from above and spends no more than the budget.
          const solver::GroupSplit lp = solver::solve_groups_lp(p, budget);
          EXPECT_GE(lp.value, b.value - 1e-9 * std::max(1.0, std::abs(b.value)));
          EXPECT_LE(lp.cost, budget + 1e-11 * std::max(1.0, budget) * k);
          lp_strict += lp.value > b.value + 1e-9;
          ++cases;
        }
  EXPECT_EQ(cases, 6 * 3 * 12 * 7);
  EXPECT_GT(lp_strict, 100);  // the instances do have integrality gaps, so the exact search is doing work
}

TEST(GroupProgramme, BelowTheCheapestPolicyIsAClearError) {
  const GroupProblem p = random_problem(4, 3, 5);
  try {
    solver::solve_groups_exact(p, p.min_cost() * 0.5 - 1);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("below the cheapest group policy's spend"), std::string::npos) << e.what();
  }
}

TEST(GroupProgramme, ExactEqualsGlpkMipAtK200M5) {
  for (uint64_t seed : {1, 2, 3})
    for (double f : {0.1, 0.4, 0.8}) {
      const GroupProblem p = random_problem(200, 5, seed);
      const double budget = p.min_cost() + f * (p.max_useful_cost() - p.min_cost());
      const solver::GroupPlan s = solver::solve_groups_exact(p, budget);
      const double mip = glpk_groups(p, budget, true);
      ASSERT_TRUE(std::isfinite(mip));
      ASSERT_TRUE(s.optimal) << "node limit hit: " << s.nodes << " nodes, gap " << s.gap;
      EXPECT_NEAR(s.value, mip, 1e-7 * std::abs(mip)) << "seed " << seed << " fraction " << f << ", " << s.nodes
                                                      << " nodes";
      // S1: GLPK's LP optimum, and every group whole but one.
      const solver::GroupSplit lp = solver::solve_groups_lp(p, budget);
      const double glp = glpk_groups(p, budget, false);
      EXPECT_NEAR(lp.value, glp, 1e-7 * std::abs(glp));
      EXPECT_GE(lp.value, s.value - 1e-7 * std::abs(s.value));
      if (lp.split_group >= 0) {
        EXPECT_GT(lp.split_share, 0.0);
        EXPECT_LT(lp.split_share, 1.0);
        EXPECT_NE(lp.split_arm, lp.arm[size_t(lp.split_group)]);
      }
    }
}
