// \brief Reduced simulation checks of the A/B-test estimators (the full study: bench/abtest_sims.cpp, docs/abtest.md
// "Simulations"): A/A coverage of the 95% CI over 200 replicates for DIM, CUPED, CUPAC, MLRATE and STATE (symmetric
// noise, where STATE's estimand is the mean effect too), the ratio metric's linearised SE (DIM) and STATE's stacked
// sandwich SE against the empirical SD over 2,000 replicates, and the simulator itself (shards, true effects).
//
// Every check uses a fixed seed, so it is deterministic; the tolerances are chosen so that a correct estimator would
// pass with probability > 0.999 over seeds (the numbers below were computed with scipy.stats).
#include <gtest/gtest.h>

#include <cmath>    // for std::sqrt, std::abs, std::isfinite
#include <cstdint>  // for int64_t, uint64_t
#include <map>      // for std::map
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "abtest/abtest.h"      // for analyse, Options, Estimate
#include "abtest/simulate.h"    // for SimSpec, simulate, simulate_shard, true_effect
#include "dist/communicator.h"  // for make_local_communicator

namespace dfcl::abtest {
namespace {

SimSpec aa_spec() {
  SimSpec s;
  s.dgp = "linear", s.noise = "normal", s.sigma = 2, s.effect = 0;
  return s;
}

// A/A: 200 replicates of 2,000 units, truth 0. The number of replicates whose 95% CI covers 0 is Binomial(200, 0.95)
// for a correct estimator (mean 190, SD 3.08): P(X <= 178) = 4.8e-4 and P(X >= 199) = 4.0e-4, so the band
// [179, 198] (coverage 0.895 .. 0.99) passes with probability 0.99911 (0.9982 at a true coverage of 0.945, 0.9988 at
// 0.955). The upper end catches SEs that are far too wide (coverage -> 1).
TEST(AbtestCoverage, AaCoverageOfDimCupedCupacMlrateState) {
  const int R = 200;
  const int64_t n = 2000;
  const std::vector<std::string> methods = {"dim", "cuped", "cupac", "mlrate", "state"};
  std::map<std::string, int> covered, valid;
  auto comm = dist::make_local_communicator();
  for (int r = 0; r < R; ++r) {
    const Units u = simulate(aa_spec(), 20261128, uint64_t(r), 0, n);
    Options o;
    o.seed = uint64_t(r);
    for (const Estimate& e : analyse(u, o, *comm, methods)) {
      if (!std::isfinite(e.ci_low) || !std::isfinite(e.ci_high)) continue;
      ++valid[e.method];
      covered[e.method] += e.ci_low <= 0 && 0 <= e.ci_high;
    }
  }
  for (const std::string& m : methods) {
    SCOPED_TRACE(m);
    EXPECT_EQ(valid[m], R);
    EXPECT_GE(covered[m], 179) << "coverage " << covered[m] / double(R);
    EXPECT_LE(covered[m], 198) << "coverage " << covered[m] / double(R);
  }
}

// Ratio metric (revenue per order): DIM on the linearised metric is R_t - R_c and its SE the delta-method SE. Over
// R = 2,000 replicates of 2,000 units, (R-1) SD^2 / sigma^2 ~ chi2(1999) for near-normal estimates, so SE/SD (SE: the
// root mean square of the replicates' SEs, whose own spread is negligible) lies in [0.9503, 1.0546] with probability
// 0.999 (chi2 quantiles 0.0005 and 0.9995). The mean estimate must lie within 4.5 of its standard errors of the true
// R_1 - R_0 (two-sided 7e-6; the pooled-vs-arm linearisation and the ratio's O(1/n) bias are far smaller).
// STATE's SE (the sandwich with the linearisation's R_g and Dbar_g stacked) must match its own spread in the same
// band; its mean is not checked against R_1 - R_0: on these skewed order values it estimates a location shift.
TEST(AbtestCoverage, RatioLinearisedSeMatchesEmpiricalSd) {
  const int R = 2000;
  const int64_t n = 2000;
  SimSpec s;
  s.dgp = "ratio";
  auto comm = dist::make_local_communicator();
  double sum[2] = {0, 0}, sum2[2] = {0, 0}, se2[2] = {0, 0};
  int valid[2] = {0, 0};
  for (int r = 0; r < R; ++r) {
    const Units u = simulate(s, 7, uint64_t(r), 0, n);
    Options o;
    o.seed = uint64_t(r);
    const std::vector<Estimate> e = analyse(u, o, *comm, {"dim", "state"});
    ASSERT_EQ(e.size(), 2u);
    for (int m = 0; m < 2; ++m) {
      if (!std::isfinite(e[m].effect) || !std::isfinite(e[m].se)) continue;
      ++valid[m];
      sum[m] += e[m].effect, sum2[m] += e[m].effect * e[m].effect, se2[m] += e[m].se * e[m].se;
    }
  }
  for (int m = 0; m < 2; ++m) {
    SCOPED_TRACE(m == 0 ? "dim" : "state");
    ASSERT_EQ(valid[m], R);
    const double mean = sum[m] / R, sd = std::sqrt((sum2[m] - R * mean * mean) / (R - 1)), se = std::sqrt(se2[m] / R);
    EXPECT_GE(se / sd, 0.9503) << "SE " << se << " SD " << sd;
    EXPECT_LE(se / sd, 1.0546) << "SE " << se << " SD " << sd;
    if (m == 0)
      EXPECT_LE(std::abs(mean - true_effect(s)), 4.5 * sd / std::sqrt(double(R)))
          << "mean " << mean << " truth " << true_effect(s);
  }
}

// Any split of a replicate into shards is the same units as the whole (the counter-based draws), with offsets.
TEST(AbtestSimulate, ShardsConcatenateToTheWhole) {
  for (const std::string dgp : {"linear", "dgp1", "ratio"}) {
    SimSpec s;
    s.dgp = dgp, s.noise = dgp == "dgp1" ? "t" : "normal", s.nu = 2.5;
    const Units whole = simulate(s, 3, 5, 0, 101);
    std::vector<double> y, d, x, pre;
    std::vector<uint8_t> t;
    for (int r = 0; r < 3; ++r) {
      const Units part = simulate_shard(s, 3, 5, 101, r, 3);
      EXPECT_EQ(part.offset, 101 * r / 3);
      y.insert(y.end(), part.y.begin(), part.y.end());
      d.insert(d.end(), part.d.begin(), part.d.end());
      x.insert(x.end(), part.x.begin(), part.x.end());
      pre.insert(pre.end(), part.pre.begin(), part.pre.end());
      t.insert(t.end(), part.t.begin(), part.t.end());
    }
    EXPECT_EQ(y, whole.y) << dgp;
    EXPECT_EQ(d, whole.d) << dgp;
    EXPECT_EQ(x, whole.x) << dgp;
    EXPECT_EQ(pre, whole.pre) << dgp;
    EXPECT_EQ(t, whole.t) << dgp;
    EXPECT_EQ(whole.num_features, 5);
    EXPECT_EQ(whole.ratio(), dgp == "ratio");
  }
}

// The closed-form true effects against DIM on 400,000 units (within 4.5 SE: two-sided 7e-6), and the t noise's
// variance: sigma^2 nu / (nu - 2) at nu = 5 (the sample variance of 400,000 t(5) draws has a relative SD of
// sqrt((kurtosis - 1) / n) = 0.45% (kurtosis 9); 3% is over 6 of them).
TEST(AbtestSimulate, TrueEffectsAndNoise) {
  auto comm = dist::make_local_communicator();
  const int64_t n = 400000;
  for (const std::string dgp : {"dgp1", "ratio"}) {
    SimSpec s;
    s.dgp = dgp;
    const Units u = simulate(s, 11, 0, 0, n);
    const Estimate e = analyse(u, Options(), *comm, {"dim"}).at(0);
    EXPECT_LE(std::abs(e.effect - true_effect(s)), 4.5 * e.se) << dgp << ": " << e.effect << " vs " << true_effect(s);
  }
  SimSpec t;
  t.dgp = "linear", t.noise = "t", t.nu = 5, t.sigma = 3;
  const Units u = simulate(t, 11, 0, 0, n);
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double* x = &u.x[size_t(i) * 5];
    const double eps = u.y[size_t(i)] - 20 - (2 * x[0] + x[1] - x[2] + 0.5 * x[3]);
    ss += eps * eps;
  }
  EXPECT_NEAR(ss / n / (9 * 5.0 / 3), 1.0, 0.03);
}

}  // namespace
}  // namespace dfcl::abtest
