// \brief Multi-arm cost curve: hand-computed points and area, thinning, the binary case against AUCC's points.
#include <gtest/gtest.h>  // for TEST

#include <cmath>  // for std::isnan, INFINITY

#include "core/error.h"          // for ConfigError
#include "metrics/aucc.h"        // for Aucc
#include "metrics/cost_curve.h"  // for cost_curve
#include "metrics/ipw_path.h"    // for IpwPath
#include "golden_trial.h"        // for Golden

namespace dfcl::metrics {
namespace {

// The six-row, three-arm trial of golden_trial.h (p_j = 1/3: a matched row counts 0.5 times its outcome per capita).
// All control: rows 0, 3 -> rbar = 0.5 (1 + 2) = 1.5, cbar = 0. Arm 1 for all: rows 1, 4 -> (r, c) = (2.5, 1);
// arm 2: rows 2, 5 -> (4.5, 2). Reference arm (best mean revenue) = 2: C* = 2, R* = 3.
// Sweep: start {0, 3} matched -> (0, 0); lambda 4: row 4 enters -> (0.5, 1.5); 2.5: row 5 enters -> (1.5, 4);
// 2: row 0 leaves -> (1.5, 3.5); 0.5: row 2 enters, row 3 leaves -> (2.5, 4.5).
// Q = 4, grid 0, 0.5, 1, 1.5, 2 -> Y = 0, 1.5, 4, 4, 4.5 -> area = 14 / (3 * 5) = 14/15.
TEST(CostCurve, GoldenHandComputed) {
  Golden g;
  RctSample s = g.sample();
  IpwPath path(g.scores(), s, 1);
  CostCurveOptions o;
  o.quantiles = 4;
  CostCurve cc = cost_curve(path, o);
  EXPECT_DOUBLE_EQ(cc.control_revenue, 1.5);
  EXPECT_DOUBLE_EQ(cc.control_cost, 0.0);
  EXPECT_EQ(cc.reference_arm, 2);
  EXPECT_DOUBLE_EQ(cc.reference_cost, 2.0);
  EXPECT_DOUBLE_EQ(cc.reference_revenue, 3.0);
  const std::vector<double> lam = {INFINITY, 4, 2.5, 2, 0.5}, c = {0, 0.5, 1.5, 1.5, 2.5}, r = {0, 1.5, 4, 3.5, 4.5};
  ASSERT_EQ(cc.points, 5);
  ASSERT_EQ(cc.cost.size(), 5u);
  for (size_t k = 0; k < 5; ++k) {
    EXPECT_EQ(cc.lambda[k], lam[k]) << k;
    EXPECT_DOUBLE_EQ(cc.cost[k], c[k]) << k;
    EXPECT_DOUBLE_EQ(cc.revenue[k], r[k]) << k;
  }
  const std::vector<double> grid = {0, 1.5, 4, 4, 4.5};
  ASSERT_EQ(cc.grid_revenue.size(), grid.size());
  for (size_t k = 0; k < grid.size(); ++k) EXPECT_DOUBLE_EQ(cc.grid_revenue[k], grid[k]) << k;
  EXPECT_NEAR(cc.area, 14.0 / 15.0, 1e-12);
  EXPECT_TRUE(cc.note.empty());
}

TEST(CostCurve, ChosenReferenceArmAndFlatExtension) {
  Golden g;
  RctSample s = g.sample();
  IpwPath path(g.scores(), s, 1);
  // Reference arm 1: C* = 1, R* = 1; grid 0, .25, .5, .75, 1 -> Y = 0, 1.5, 1.5, 4, 4 -> area = 11 / 5.
  CostCurveOptions o;
  o.quantiles = 4;
  o.reference_arm = 1;
  EXPECT_NEAR(cost_curve(path, o).area, 11.0 / 5.0, 1e-12);
  // A scorer that never leaves control spends nothing: every grid level keeps the final dR = 0.
  std::vector<float> r(18, 0.0f), c(18, 1.0f);
  for (int i = 0; i < 6; ++i) r[i * 3] = 1, c[i * 3] = 0;
  IpwPath lazy(solver::Scores{6, 3, r.data(), c.data()}, s, 1);
  CostCurve z = cost_curve(lazy, o);
  EXPECT_EQ(z.points, 1);
  EXPECT_DOUBLE_EQ(z.area, 0.0);
}

TEST(CostCurve, ThinningKeepsBothEnds) {
  Golden g;
  RctSample s = g.sample();
  IpwPath path(g.scores(), s, 1);
  CostCurveOptions o;
  o.max_points = 3;
  CostCurve cc = cost_curve(path, o);
  ASSERT_EQ(cc.cost.size(), 3u);  // points 0, 2, 4
  EXPECT_DOUBLE_EQ(cc.cost[0], 0.0);
  EXPECT_DOUBLE_EQ(cc.revenue[1], 4.0);
  EXPECT_DOUBLE_EQ(cc.revenue[2], 4.5);
  o.max_points = 1;
  EXPECT_THROW(cost_curve(path, o), ConfigError);
  o.max_points = 0;
  o.quantiles = 0;
  EXPECT_THROW(cost_curve(path, o), ConfigError);
  o.quantiles = 4;
  o.reference_arm = 3;
  EXPECT_THROW(cost_curve(path, o), ConfigError);
}

TEST(CostCurve, BinaryCurveVisitsAuccPoints) {
  // Two arms, every predicted uplift and cost uplift positive, distinct ROIs: the dual path treats users in
  // descending ROI order, so with empirical propensities its (dC, dR) after each user are AUCC's (x, y) with Q = n.
  std::vector<int32_t> t = {1, 0, 1, 1, 0, 0, 1, 0};
  std::vector<float> yr = {3, 1, 0, 2, 2, 0, 5, 1}, yc = {1, 0, 1, 2, 0, 1, 1, 0};
  std::vector<float> r = {0, 1, 0, 3, 0, 2, 0, 0.5f, 0, 4, 0, 1.5f, 0, 0.2f, 0, 2.5f};
  std::vector<float> c = {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1};
  RctSample s = make_sample(t, yr, yc, 2);
  IpwPath path(solver::Scores{8, 2, r.data(), c.data()}, s, 1);
  CostCurveOptions o;
  o.max_points = 0;
  CostCurve cc = cost_curve(path, o);
  // AUCC's running points, recomputed here from the ranking by ROI (= r_hat arm 1): rows 4, 1, 7, 2, 5, 0, 3, 6.
  const int order[8] = {4, 1, 7, 2, 5, 0, 3, 6};
  double CT = 0, CC = 0, RT = 0, RC = 0;
  ASSERT_EQ(cc.points, 9);
  for (int k = 0; k < 8; ++k) {
    const int i = order[k];
    if (t[i])
      CT += yc[i], RT += yr[i];
    else
      CC += yc[i], RC += yr[i];
    EXPECT_NEAR(cc.cost[k + 1], CT / 4 - CC / 4, 1e-12) << k;
    EXPECT_NEAR(cc.revenue[k + 1], RT / 4 - RC / 4, 1e-12) << k;
  }
}

}  // namespace
}  // namespace dfcl::metrics
