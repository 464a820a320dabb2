// \brief EOM: the IPW identity, the lambda path against brute force, hand-computed bisection results, errors.
#include <gtest/gtest.h>  // for TEST

#include <cmath>       // for std::abs, std::nanf
#include <functional>  // for std::function
#include <random>      // for std::mt19937_64

#include "core/error.h"            // for DataError, ConfigError
#include "metrics/eom.h"           // for eom_at, eom_curve, normalise_eom
#include "golden_trial.h"          // for Golden (hand-worked values)
#include "metrics/ipw_path.h"      // for IpwPath
#include "metrics/policy_value.h"  // for policy_value, uniform_policy_value
#include "metrics/synthetic.h"     // for Trial
#include "solver/mckp.h"           // for policy_at

namespace dfcl::metrics {
namespace {

TEST(Eom, PathMatchesHandComputedStepFunctions) {
  Golden g;
  RctSample s = g.sample();
  IpwPath path(g.scores(), s, 1);
  EXPECT_EQ(path.bound().spec, 4.0);
  EXPECT_EQ(path.bound().hi, 4.0);
  auto cbar = [](double l) { return 0.5 * ((l < 4) + 2 * (l < 2.5) + 2 * (l < 0.5)); };
  auto rbar = [](double l) { return 0.5 * ((l >= 2) + 4 * (l < 0.5) + 2 * (l >= 0.5) + 3 * (l < 4) + 5 * (l < 2.5)); };
  for (double l : {0.0, 0.1, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 2.2, 2.5, 3.0, 4.0, 5.0, 1e9}) {
    EXPECT_DOUBLE_EQ(path.at(l).cost, cbar(l)) << l;
    EXPECT_DOUBLE_EQ(path.at(l).revenue, rbar(l)) << l;
  }
}

TEST(Eom, BisectionGoldenValues) {
  Golden g;
  RctSample s = g.sample();
  IpwPath path(g.scores(), s, 1);
  // b = 1.5: the first midpoint, lambda = 2, spends exactly 1.5. rbar(2) = 0.5 (1 + 2 + 3 + 5) = 5.5.
  EomPoint p = eom_at(path, 1.5);
  EXPECT_TRUE(p.matched);
  EXPECT_EQ(p.iterations, 1);
  EXPECT_EQ(p.lambda, 2.0);
  EXPECT_DOUBLE_EQ(p.revenue, 5.5);
  // b = 2.5: lambda 2 (1.5: hi = 2), 1 (1.5: hi = 1), 0.5 (1.5: hi = 0.5), 0.25 (2.5: matched).
  // rbar(0.25) = 0.5 (4 + 3 + 5) = 6.
  p = eom_at(path, 2.5);
  EXPECT_TRUE(p.matched);
  EXPECT_EQ(p.iterations, 4);
  EXPECT_EQ(p.lambda, 0.25);
  EXPECT_DOUBLE_EQ(p.revenue, 6.0);
  // b = 0.5: lambda 2 (1.5: lo = 2), then 3 (0.5: matched); rbar(3) = 0.5 (1 + 2 + 3) = 3.
  p = eom_at(path, 0.5);
  EXPECT_TRUE(p.matched);
  EXPECT_EQ(p.lambda, 3.0);
  EXPECT_DOUBLE_EQ(p.revenue, 3.0);
  // b = 1: cbar jumps from 1.5 to 0.5 at lambda = 2.5 and never equals 1. lambda 2 (lo), 3 (hi), 2.5 (0.5: hi = 2.5),
  // then every midpoint lies in (2.25, 2.5) and spends 1.5 (lo), until [lo, 2.5] collapses. Not matched, but stepped:
  // the point is taken at hi = 2.5, the side that does not overspend: cost 0.5, rbar(2.5) = 0.5 (1 + 2 + 3) = 3, and
  // the cost just below is 1.5.
  p = eom_at(path, 1.0);
  EXPECT_FALSE(p.matched);
  EXPECT_TRUE(p.stepped);
  EXPECT_TRUE(p.reached());
  EXPECT_EQ(p.lambda, 2.5);
  EXPECT_DOUBLE_EQ(p.cost, 0.5);
  EXPECT_DOUBLE_EQ(p.revenue, 3.0);
  EXPECT_DOUBLE_EQ(p.step_over, 1.5);
  EXPECT_LE(p.iterations, 60);
  // Neither matched nor stepped where no lambda spends as much as b (cbar(0+) = 2.5) or every lambda spends more
  // (cbar(lambda >= 4) = 0, so no budget is above every lambda's spend here: b = 3 is the first case only).
  p = eom_at(path, 3.0);
  EXPECT_FALSE(p.matched);
  EXPECT_FALSE(p.stepped);
  EXPECT_FALSE(p.reached());
  EXPECT_LT(p.lambda, 1e-9);
  EXPECT_DOUBLE_EQ(p.cost, 2.5);
  // The curve is the same points in budget order.
  auto curve = eom_curve(path, {0.5, 1.5, 2.5});
  ASSERT_EQ(curve.size(), 3u);
  EXPECT_DOUBLE_EQ(curve[0].revenue, 3.0);
  EXPECT_DOUBLE_EQ(curve[1].revenue, 5.5);
  EXPECT_DOUBLE_EQ(curve[2].revenue, 6.0);
}

TEST(Eom, EveryoneOnArmJIsTheArmMean) {
  test::Trial trial(200000, 4, 3);
  RctSample s = trial.sample();
  for (int j = 0; j < s.m; ++j) {
    double sum_r = 0, sum_c = 0;
    int64_t nj = 0;
    for (int64_t i = 0; i < s.n; ++i)
      if (s.arm[i] == j) sum_r += s.revenue[i], sum_c += s.cost[i], ++nj;
    const PolicyValue v = uniform_policy_value(s, j);
    EXPECT_NEAR(v.revenue, sum_r / nj, 1e-12 * std::abs(sum_r / nj)) << j;
    EXPECT_NEAR(v.cost, sum_c / nj, 1e-12 * std::max(1.0, sum_c / nj)) << j;
    // Through the EOM machinery: scores under which arm j is everyone's only choice at every lambda.
    std::vector<float> r(size_t(s.n) * s.m, 0.0f), c(size_t(s.n) * s.m, 1.0f);
    for (int64_t i = 0; i < s.n; ++i) r[i * s.m + j] = 1, c[i * s.m + j] = 0;
    IpwPath path(solver::Scores{s.n, s.m, r.data(), c.data()}, s, 2);
    const EomPoint p = eom_at(path, 0.5);
    EXPECT_NEAR(p.revenue, sum_r / nj, 1e-9 * std::abs(sum_r / nj)) << j;
    EXPECT_NEAR(p.cost, sum_c / nj, 1e-9 * std::max(1.0, sum_c / nj)) << j;
  }
}

TEST(Eom, PathEqualsBruteForceArgmaxAtAnyLambda) {
  std::mt19937_64 gen(7);
  std::uniform_real_distribution<float> u(0, 1);
  const int64_t n = 5000;
  const int m = 5;
  std::vector<int32_t> t(n);
  std::vector<float> yr(n), yc(n), r(n * m), c(n * m);
  for (int64_t i = 0; i < n; ++i) {
    t[i] = int32_t(gen() % m);
    yr[i] = 3 * u(gen), yc[i] = t[i] * u(gen);
    for (int j = 0; j < m; ++j) r[i * m + j] = u(gen) + 0.3f * j * u(gen), c[i * m + j] = j == 0 ? 0 : j * u(gen);
  }
  RctSample s = make_sample(t, yr, yc, m, {0.3, 0.1, 0.2, 0.25, 0.15});  // design propensities
  solver::Scores sc{n, m, r.data(), c.data()};
  IpwPath path(sc, s, 3);
  std::vector<uint8_t> arm;
  for (double l : {0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.3, 2.0, 5.0, 50.0}) {
    solver::policy_at(sc, l, arm);
    const PolicyValue brute = policy_value(s, arm);
    EXPECT_NEAR(path.at(l).revenue, brute.revenue, 1e-12 * std::abs(brute.revenue) + 1e-15) << l;
    EXPECT_NEAR(path.at(l).cost, brute.cost, 1e-12 * std::abs(brute.cost) + 1e-15) << l;
  }
  // The bisection lands within eps_rel of the budget where the step function allows it (5000 rows: fine steps).
  for (double b : {0.2, 0.5, 0.8}) {
    const EomPoint p = eom_at(path, b);
    solver::policy_at(sc, p.lambda, arm);
    EXPECT_NEAR(policy_value(s, arm).revenue, p.revenue, 1e-12 * std::abs(p.revenue));
    if (p.matched) {
      EXPECT_LT(std::abs(p.cost - b), 1e-4 * b);
    }
  }
}

TEST(Eom, WeightsEqualDuplicatedRows) {
  Golden g;
  RctSample s = g.sample();
  IpwPath path(g.scores(), s, 1);
  const std::vector<uint32_t> counts = {2, 0, 1, 3, 1, 2};
  IpwPath::Weights w = path.weigh(counts.data());
  Golden d;  // the same rows, each repeated counts[i] times
  d.t.clear(), d.y_r.clear(), d.y_c.clear(), d.r_hat.clear(), d.c_hat.clear();
  for (size_t i = 0; i < counts.size(); ++i)
    for (uint32_t k = 0; k < counts[i]; ++k) {
      d.t.push_back(g.t[i]), d.y_r.push_back(g.y_r[i]), d.y_c.push_back(g.y_c[i]);
      for (int j = 0; j < 3; ++j) d.r_hat.push_back(g.r_hat[i * 3 + j]), d.c_hat.push_back(g.c_hat[i * 3 + j]);
    }
  RctSample ds = d.sample();  // empirical propensities of the duplicated rows, as the replicate recomputes them
  IpwPath dup(solver::Scores{ds.n, 3, d.r_hat.data(), d.c_hat.data()}, ds, 1);
  for (double l : {0.0, 0.4, 1.0, 2.2, 3.0, 4.5}) {
    EXPECT_NEAR(path.at(l, w).revenue, dup.at(l).revenue, 1e-12) << l;
    EXPECT_NEAR(path.at(l, w).cost, dup.at(l).cost, 1e-12) << l;
  }
}

TEST(Eom, Normalised) {
  std::vector<EomPoint> a(2), ref(2);
  a[0].budget = ref[0].budget = 1, a[1].budget = ref[1].budget = 2;
  a[0].revenue = 3, a[1].revenue = 6, ref[0].revenue = 2, ref[1].revenue = 4;
  NormalisedEom n = normalise_eom(a, ref);
  EXPECT_DOUBLE_EQ(n.ratio[0], 1.5);
  EXPECT_DOUBLE_EQ(n.mean_ratio, 1.5);
  EXPECT_DOUBLE_EQ(n.overall, 9.0 / 6.0);
  ref[1].budget = 3;
  EXPECT_THROW(normalise_eom(a, ref), DataError);
}

template <class E>
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Eom, BadInputIsAClearError) {
  Golden g;
  RctSample s = g.sample();
  IpwPath path(g.scores(), s, 1);
  EXPECT_NE(message_of<ConfigError>([&] { eom_at(path, 0.0); }).find("must be a positive number"), std::string::npos);
  EXPECT_NE(message_of<ConfigError>([&] { eom_at(path, -1.0); }).find("budget"), std::string::npos);
  // Mismatched lengths.
  std::vector<float> short_rev = {1, 2, 3};
  EXPECT_NE(message_of<DataError>([&] { make_sample(g.t, short_rev, g.y_c, 3); }).find("length mismatch: 'revenue'"),
            std::string::npos);
  solver::Scores five{5, 3, g.r_hat.data(), g.c_hat.data()};
  EXPECT_NE(message_of<DataError>([&] { IpwPath p(five, s, 1); }).find("length mismatch"), std::string::npos);
  // No RCT rows.
  RctSample none = s;
  none.n = 0;
  EXPECT_NE(message_of<DataError>([&] {
              IpwPath p(solver::Scores{0, 3, nullptr, nullptr}, none, 1);
            }).find("no RCT rows"),
            std::string::npos);
  // Propensity missing, or one per arm missing.
  RctSample nop = s;
  nop.propensity.clear();
  EXPECT_NE(message_of<DataError>([&] { IpwPath p(g.scores(), nop, 1); }).find("propensity is missing"),
            std::string::npos);
  EXPECT_NE(message_of<DataError>([&] { uniform_policy_value(nop, 0); }).find("propensity is missing"),
            std::string::npos);
  nop.propensity = {0.5, 0.5};
  EXPECT_NE(message_of<DataError>([&] { validate(nop); }).find("propensity has 2 values but the data has 3 arms"),
            std::string::npos);
  // An arm id out of range names the row.
  Golden bad;
  bad.t[4] = 7;
  EXPECT_NE(message_of<DataError>([&] { bad.sample(); }).find("row 4"), std::string::npos);
  // Non-finite scores name row and arm.
  Golden nan;
  nan.r_hat[7] = std::nanf("");
  EXPECT_NE(message_of<DataError>([&] { IpwPath p(nan.scores(), s, 1); }).find("row 2, arm 1"), std::string::npos);
}

}  // namespace
}  // namespace dfcl::metrics
