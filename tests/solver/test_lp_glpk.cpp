// \brief The dual path's LP bound equals GLPK's optimum of the LP relaxation (N = 2,000 users, M = 5 arms).
#include <glpk.h>         // for glp_simplex
#include <gtest/gtest.h>  // for TEST

#include "core/rng.h"     // for Rng
#include "solver/mckp.h"  // for DualPath

using namespace dfcl;

namespace {
// max sum r z  s.t.  sum_j z_ij = 1 (each i),  sum c z <= B,  0 <= z <= 1.
double glpk_lp(int64_t n, int m, const std::vector<float>& r, const std::vector<float>& c, double budget) {
  glp_term_out(GLP_OFF);
  glp_prob* lp = glp_create_prob();
  glp_set_obj_dir(lp, GLP_MAX);
  glp_add_rows(lp, int(n) + 1);
  for (int i = 1; i <= n; ++i) glp_set_row_bnds(lp, i, GLP_FX, 1.0, 1.0);
  glp_set_row_bnds(lp, int(n) + 1, GLP_UP, 0.0, budget);
  glp_add_cols(lp, int(n * m));
  std::vector<int> ia{0}, ja{0};
  std::vector<double> ar{0};
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) {
      int col = int(i * m + j) + 1;
      glp_set_col_bnds(lp, col, GLP_DB, 0.0, 1.0);
      glp_set_obj_coef(lp, col, r[i * m + j]);
      ia.push_back(int(i) + 1), ja.push_back(col), ar.push_back(1.0);
      ia.push_back(int(n) + 1), ja.push_back(col), ar.push_back(c[i * m + j]);
    }
  glp_load_matrix(lp, int(ia.size()) - 1, ia.data(), ja.data(), ar.data());
  glp_smcp parm;
  glp_init_smcp(&parm);
  parm.presolve = GLP_ON;
  int rc = glp_simplex(lp, &parm);
  double obj = rc == 0 && glp_get_status(lp) == GLP_OPT ? glp_get_obj_val(lp) : NAN;
  glp_delete_prob(lp);
  return obj;
}
}  // namespace

TEST(DualPathVsGlpk, LpBoundEqualsTheLpOptimum) {
  const int64_t n = 2000;
  const int m = 5;
  Rng g(2024, 1);
  std::vector<float> r(n * m), c(n * m);
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) {
      // Increasing costs with arm, noisy concave revenue (some negative uplift), as a model would predict.
      c[i * m + j] = j == 0 ? 0.f : float(j * (0.5 + g.uniform()));
      r[i * m + j] = float(3 * (1 - std::exp(-0.7 * j)) * g.uniform() + 0.3 * g.normal());
    }
  solver::DualPath path({n, m, r.data(), c.data()}, 1);
  for (double f : {0.02, 0.1, 0.35, 0.7, 0.95}) {
    double budget = path.min_spend() + f * (path.max_spend() - path.min_spend());
    auto a = path.solve(budget);
    double opt = glpk_lp(n, m, r, c, budget);
    ASSERT_TRUE(std::isfinite(opt));
    EXPECT_NEAR(a.lp_bound, opt, 1e-6 * std::abs(opt)) << "budget fraction " << f;
    EXPECT_LE(a.revenue, opt + 1e-9);
  }
}
