// \brief A/B-test estimators against closed forms: DIM, CUPED, MLRATE, STATE, the ratio linearisation, the special
// functions, the cross-fitted prediction, bad input, and the same estimates on 1, 2, 3 and 4 in-process ranks.
#include <gtest/gtest.h>

#include <algorithm>  // for std::max
#include <cmath>      // for std::sqrt, std::fabs, std::log, NAN, INFINITY
#include <cstdio>     // for std::printf
#include <string>     // for std::string
#include <vector>     // for std::vector

#include "abtest/abtest.h"
#include "abtest/internal.h"    // for fold_of
#include "core/special.h"     // for digamma, trigamma, normal_quantile
#include "core/config.h"        // for Config
#include "core/error.h"         // for DataError, ConfigError
#include "core/rng.h"           // for Rng
#include "dist/communicator.h"  // for make_local_communicator
#include "dist/thread_comm.h"   // for run_ranks

namespace dfcl::abtest {
namespace {

// ---------------------------------------------------------------- data

struct Data {
  std::vector<double> y, d, pre, x;
  std::vector<uint8_t> t;
  int features = 0;
  int64_t size() const { return int64_t(y.size()); }
};

// y = 2 + 0.5 T + f(x) + noise, f nonlinear in 3 features; pre = f(x) + noise (correlated with y); noise Gaussian
// (scale 1) or sigma t_nu when nu > 0. With `ratio`, d = 1 + Poisson-like orders and y the numerator d * price.
Data make_data(int64_t n, uint64_t seed, bool ratio = false, double nu = 0, double effect = 0.5) {
  Data a;
  a.features = 3;
  Rng rng(seed, 77);
  for (int64_t i = 0; i < n; ++i) {
    const double x1 = rng.normal(), x2 = rng.normal(), x3 = rng.uniform();
    const uint8_t t = rng.uniform() < 0.45 ? 1 : 0;
    const double f = 1.5 * x1 + 0.8 * x2 * x2 + 2 * x3;
    double noise = rng.normal();
    if (nu > 0) {
      double chi2 = 0;
      for (int k = 0; k < int(nu); ++k) {
        const double v = rng.normal();
        chi2 += v * v;
      }
      noise = noise / std::sqrt(chi2 / nu);
    }
    a.x.insert(a.x.end(), {x1, x2, x3});
    a.t.push_back(t);
    a.pre.push_back(f + 0.7 * rng.normal());
    if (ratio) {
      const double orders = 1 + std::floor(3 * rng.uniform() + std::fabs(x1));
      a.d.push_back(orders);
      a.y.push_back(orders * (10 + f + 0.5 * t) + 3 * noise);
    } else {
      a.y.push_back(2 + effect * t + f + noise);
    }
  }
  return a;
}

Units units_of(const Data& a, int64_t begin, int64_t end, const std::string& where = "test data") {
  Units u;
  u.y.assign(a.y.begin() + begin, a.y.begin() + end);
  if (!a.d.empty()) u.d.assign(a.d.begin() + begin, a.d.begin() + end);
  u.t.assign(a.t.begin() + begin, a.t.begin() + end);
  if (!a.pre.empty()) u.pre.assign(a.pre.begin() + begin, a.pre.begin() + end);
  u.x.assign(a.x.begin() + begin * a.features, a.x.begin() + end * a.features);
  u.num_features = a.features;
  u.offset = begin;
  u.where = where;
  return u;
}
Units units_of(const Data& a) { return units_of(a, 0, a.size()); }

const Estimate& find(const std::vector<Estimate>& es, const std::string& m) {
  for (const auto& e : es)
    if (e.method == m) return e;
  throw std::runtime_error("no estimate " + m);
}

// ---------------------------------------------------------------- independent least squares (modified Gram-Schmidt)

struct LeastSquares {
  std::vector<double> beta;
  std::vector<double> xtx_inv;  // k x k
};

// cols: k columns of length n. beta = argmin |y - Z beta|; (Z'Z)^-1 = R^-1 R^-T from Z = QR.
LeastSquares least_squares(std::vector<std::vector<double>> q, std::vector<double> y) {
  const size_t k = q.size(), n = y.size();
  std::vector<double> r(k * k, 0.0), c(k);
  for (size_t j = 0; j < k; ++j) {
    for (size_t i = 0; i < j; ++i) {
      double s = 0;
      for (size_t m = 0; m < n; ++m) s += q[i][m] * q[j][m];
      r[i * k + j] = s;
      for (size_t m = 0; m < n; ++m) q[j][m] -= s * q[i][m];
    }
    double s = 0;
    for (size_t m = 0; m < n; ++m) s += q[j][m] * q[j][m];
    r[j * k + j] = std::sqrt(s);
    for (size_t m = 0; m < n; ++m) q[j][m] /= r[j * k + j];
  }
  for (size_t j = 0; j < k; ++j) {  // Q'y, column by column (MGS on y)
    double s = 0;
    for (size_t m = 0; m < n; ++m) s += q[j][m] * y[m];
    c[j] = s;
    for (size_t m = 0; m < n; ++m) y[m] -= s * q[j][m];
  }
  LeastSquares ls;
  ls.beta.assign(k, 0.0);
  for (size_t i = k; i-- > 0;) {
    double s = c[i];
    for (size_t j = i + 1; j < k; ++j) s -= r[i * k + j] * ls.beta[j];
    ls.beta[i] = s / r[i * k + i];
  }
  std::vector<double> rinv(k * k, 0.0);  // upper-triangular inverse
  for (size_t j = 0; j < k; ++j) {
    rinv[j * k + j] = 1 / r[j * k + j];
    for (size_t i = j; i-- > 0;) {
      double s = 0;
      for (size_t m = i + 1; m <= j; ++m) s += r[i * k + m] * rinv[m * k + j];
      rinv[i * k + j] = -s / r[i * k + i];
    }
  }
  ls.xtx_inv.assign(k * k, 0.0);
  for (size_t a = 0; a < k; ++a)
    for (size_t b = 0; b < k; ++b)
      for (size_t m = 0; m < k; ++m) ls.xtx_inv[a * k + b] += rinv[a * k + m] * rinv[b * k + m];
  return ls;
}

double rel(double a, double b) { return std::fabs(a - b) / std::max(std::fabs(b), 1e-300); }

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

// ---------------------------------------------------------------- special functions

TEST(AbtestSpecial, DigammaTrigammaAgainstReferenceValues) {
  struct Ref {
    double x, psi, psi1;
  };
  const Ref refs[] = {
      // mpmath, 30 digits
      {0.001, -1000.5755719318103005, 1000001.642533195869},   {0.5, -1.9635100260214234794, 4.9348022005446793094},
      {1, -0.57721566490153286061, 1.6449340668482264365},     {2, 0.42278433509846713939, 0.64493406684822643647},
      {3.7, 1.1671535393615113859, 0.3100378576700383191},     {10, 2.2517525890667211076, 0.10516633568168574612},
      {27.5, 3.2958940082150333441, 0.037032805295559363503},  {100, 4.6001618527380874002, 0.010050166663333571395},
      {1000, 6.9072551956488120521, 0.0010005001666666333334}, {1e6, 13.815510057964190771, 1.0000005000001666667e-6}};
  for (const Ref& r : refs) {
    EXPECT_NEAR(digamma(r.x), r.psi, 1e-13 * std::max(1.0, std::fabs(r.psi))) << "x = " << r.x;
    EXPECT_NEAR(trigamma(r.x), r.psi1, 1e-13 * r.psi1) << "x = " << r.x;
    EXPECT_NEAR(log_minus_digamma(r.x), std::log(r.x) - r.psi, 1e-13 * std::max(1.0, std::fabs(r.psi))) << r.x;
  }
  EXPECT_NEAR(digamma(1.4616321449683623), 0.0, 1e-15);  // the positive root
  EXPECT_NEAR(log_minus_digamma(5e5), 1 / 1e6 + 1 / (12 * 25e10), 1e-20);
  EXPECT_TRUE(std::isnan(digamma(0))) << "psi is defined for x > 0 here";
  EXPECT_TRUE(std::isnan(trigamma(-1)));
}

TEST(AbtestSpecial, NormalQuantile) {
  EXPECT_NEAR(normal_quantile(0.975), 1.9599639845400542355, 1e-14);
  EXPECT_NEAR(normal_quantile(0.3), -0.52440051270804078404, 1e-14);
  EXPECT_NEAR(normal_quantile(1e-10), -6.3613409024040562047, 1e-12);
  EXPECT_NEAR(normal_quantile(0.999999), 4.7534243088228989482, 1e-10);
  EXPECT_EQ(normal_quantile(0.5), 0.0);
  EXPECT_NEAR(two_sided_p(1.9599639845400542355), 0.05, 1e-15);
}

// ---------------------------------------------------------------- DIM

TEST(AbtestDim, DifferenceOfMeansAndWelchSeByHand) {
  Units u;
  u.y = {1, 10, 2, 12, 3, 15, 4};
  u.t = {0, 1, 0, 1, 0, 1, 0};
  auto comm = dist::make_local_communicator();
  const auto es = analyse(u, Options{}, *comm, {"dim"});
  ASSERT_EQ(es.size(), 1u);
  const Estimate& e = es[0];
  // control {1, 2, 3, 4}: mean 5/2, variance 5/3; treatment {10, 12, 15}: mean 37/3, variance 19/3.
  EXPECT_DOUBLE_EQ(e.effect, 37.0 / 3 - 5.0 / 2);
  EXPECT_NEAR(e.se, std::sqrt(19.0 / 9 + 5.0 / 12), 1e-15);  // sqrt(91)/6
  EXPECT_NEAR(e.se, std::sqrt(91.0) / 6, 1e-15);
  const double z = 1.9599639845400542355;
  EXPECT_NEAR(e.ci_low, e.effect - z * e.se, 1e-13);
  EXPECT_NEAR(e.ci_high, e.effect + z * e.se, 1e-13);
  EXPECT_NEAR(e.p_value, std::erfc(e.effect / e.se / std::sqrt(2.0)), 1e-16);
  EXPECT_EQ(e.variance_reduction, 0.0);
  EXPECT_EQ(e.estimand, "difference in means");
  EXPECT_EQ(e.details["n_treatment"], 3);
  EXPECT_NEAR(e.details["relative_effect"].get<double>(), (37.0 / 3) / 2.5 - 1, 1e-15);
  const nlohmann::json j = e.to_json();
  EXPECT_EQ(j["method"], "dim");
  EXPECT_TRUE(j.contains("ci_low") && j.contains("warnings") && j.contains("details"));
}

// ---------------------------------------------------------------- CUPED

TEST(AbtestCuped, ThetaIsTheOlsSlopeAndEffectIsDimOnTheAdjustedMetric) {
  const Data a = make_data(3000, 1);
  auto comm = dist::make_local_communicator();
  const Estimate e = find(analyse(units_of(a), Options{}, *comm, {"cuped"}), "cuped");
  // Direct least squares of y on [1, pre] through the 2 x 2 normal equations (no centring).
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int64_t i = 0; i < a.size(); ++i)
    n += 1, sx += a.pre[i], sy += a.y[i], sxx += a.pre[i] * a.pre[i], sxy += a.pre[i] * a.y[i];
  const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  EXPECT_LT(rel(e.details["theta"].get<double>(), slope), 1e-9) << e.details.dump();
  std::printf("CUPED theta %.6f vs OLS slope %.6f (rel %.2g)\n", e.details["theta"].get<double>(), slope,
              rel(e.details["theta"].get<double>(), slope));
  // DIM on y - theta (pre - mean pre), computed here.
  const double theta = e.details["theta"], xbar = sx / n;
  double s[2] = {0, 0}, c[2] = {0, 0};
  for (int64_t i = 0; i < a.size(); ++i) s[a.t[i]] += a.y[i] - theta * (a.pre[i] - xbar), c[a.t[i]] += 1;
  EXPECT_NEAR(e.effect, s[1] / c[1] - s[0] / c[0], 1e-12);
}

// The metric itself as the pre-period covariate: refused, not an "effect" of 1e-16 with p = 0.001 (issue 14, item 10).
TEST(AbtestCuped, ACovariateThatIsTheMetricIsRefused) {
  Data a = make_data(3000, 1);
  a.pre = a.y;
  auto comm = dist::make_local_communicator();
  // Not computed (NaN, with the reason), like any estimate the data cannot support; the others stand.
  const Estimate e = find(analyse(units_of(a), Options{}, *comm, {"dim", "cuped"}), "cuped");
  EXPECT_TRUE(std::isnan(e.effect)) << e.effect;
  EXPECT_NE(e.details.dump().find("the covariate 'pre' determines the outcome exactly"), std::string::npos)
      << e.details.dump();
  EXPECT_FALSE(std::isnan(find(analyse(units_of(a), Options{}, *comm, {"dim", "cuped"}), "dim").effect));
  Data b = make_data(3000, 1);  // an affine function of the metric too
  for (size_t i = 0; i < b.y.size(); ++i) b.pre[i] = 2 * b.y[i] - 7;
  EXPECT_TRUE(std::isnan(find(analyse(units_of(b), Options{}, *comm, {"cuped"}), "cuped").effect));
}

// A covariate that carries the arm (measured: CUPAC with a feature separating the arms reported -0.003 for a true
// effect of -4.5) is refused by every estimator that adjusts for it, naming the feature; DIM stands. A balanced
// covariate records its balance z without a warning.
TEST(AbtestBalance, ACovariateThatEncodesTheArmIsRefusedNamingTheFeature) {
  Data a = make_data(4000, 3, false, 0, -4.5);
  auto comm = dist::make_local_communicator();
  const auto fine = analyse(units_of(a), Options{}, *comm);
  for (const auto& e : fine) {
    SCOPED_TRACE(e.method);
    EXPECT_TRUE(e.warnings.empty()) << e.warnings.front();
    if (e.method != "dim") {
      EXPECT_LT(std::fabs(e.details.at("covariate_balance_z").get<double>()), 3.89);
    }
  }
  for (size_t i = 0; i < a.y.size(); ++i) a.x[3 * i + 1] = a.t[i] + 0.01 * a.x[3 * i];  // x2: the arm, blurred
  for (size_t i = 0; i < a.y.size(); ++i) a.pre[i] = 3 * a.t[i] + a.x[3 * i];           // pre: affected by T
  Units u = units_of(a);
  u.feature_names = {"age", "coupon_seen", "tenure"};
  const auto es = analyse(u, Options{}, *comm);
  EXPECT_NEAR(find(es, "dim").effect, -4.5, 0.2);
  for (const char* m : {"cuped", "cupac", "mlrate", "state"}) {
    SCOPED_TRACE(m);
    const Estimate& e = find(es, m);
    EXPECT_TRUE(std::isnan(e.effect)) << e.effect;
    const std::string why = e.details.value("error", "");
    EXPECT_NE(why.find("differs between the arms by z = "), std::string::npos) << why;
    EXPECT_NE(why.find("measured before"), std::string::npos) << why;
    if (std::string(m) != "cuped") {
      EXPECT_NE(why.find("the feature 'coupon_seen' differs most"), std::string::npos) << why;
    }
  }
}

TEST(AbtestCuped, VarianceReductionIsRhoSquaredOnAGaussianExample) {
  const double rho = 0.8;
  Units u;
  Rng rng(5, 1);
  for (int i = 0; i < 40000; ++i) {
    const double x = rng.normal();
    u.pre.push_back(x);
    u.t.push_back(rng.uniform() < 0.5);
    u.y.push_back(rho * x + std::sqrt(1 - rho * rho) * rng.normal() + 0.1 * u.t.back());
  }
  auto comm = dist::make_local_communicator();
  const auto es = analyse(u, Options{}, *comm);
  ASSERT_EQ(es.size(), 2u) << "dim and cuped (no features)";
  const Estimate& e = find(es, "cuped");
  EXPECT_NEAR(e.variance_reduction, rho * rho, 0.02);
  EXPECT_NEAR(e.details["correlation"].get<double>(), rho, 0.01);
  RecordProperty("cuped_variance_reduction", std::to_string(e.variance_reduction));
  std::printf("CUPED variance reduction %.4f (rho^2 = %.2f)\n", e.variance_reduction, rho * rho);
}

// ---------------------------------------------------------------- MLRATE

TEST(AbtestMlrate, EqualsOlsWithInteractionAndHc1Sandwich) {
  const Data a = make_data(4000, 2);
  const Units u = units_of(a);
  auto comm = dist::make_local_communicator();
  Analysis an(u, Options{}, *comm);
  const std::vector<double> g = an.prediction();
  const Estimate e = make_estimator("mlrate")->estimate(an);

  const size_t n = g.size();
  double gbar = 0;
  for (double v : g) gbar += v / double(n);
  std::vector<std::vector<double>> cols(4, std::vector<double>(n));
  for (size_t i = 0; i < n; ++i)
    cols[0][i] = 1, cols[1][i] = a.t[i], cols[2][i] = g[i], cols[3][i] = a.t[i] * (g[i] - gbar);
  const LeastSquares ls = least_squares(cols, a.y);
  EXPECT_LT(rel(e.effect, ls.beta[1]), 1e-10) << e.effect << " vs " << ls.beta[1];
  EXPECT_LT(rel(e.details["gamma"].get<double>(), ls.beta[2]), 1e-10);
  EXPECT_LT(rel(e.details["interaction"].get<double>(), ls.beta[3]), 1e-9);
  EXPECT_LT(rel(e.details["intercept"].get<double>(), ls.beta[0]), 1e-10);
  // HC1: n / (n - 4) (Z'Z)^-1 (sum e^2 z z') (Z'Z)^-1.
  std::vector<double> meat(16, 0.0);
  for (size_t i = 0; i < n; ++i) {
    double r = a.y[i];
    for (int j = 0; j < 4; ++j) r -= ls.beta[j] * cols[j][i];
    for (int p = 0; p < 4; ++p)
      for (int q = 0; q < 4; ++q) meat[p * 4 + q] += r * r * cols[p][i] * cols[q][i];
  }
  double v11 = 0;  // row 1 of (Z'Z)^-1 M (Z'Z)^-1, column 1
  for (int p = 0; p < 4; ++p)
    for (int q = 0; q < 4; ++q) v11 += ls.xtx_inv[1 * 4 + p] * meat[p * 4 + q] * ls.xtx_inv[q * 4 + 1];
  const double se = std::sqrt(v11 * double(n) / double(n - 4));
  EXPECT_LT(rel(e.se, se), 1e-9) << e.se << " vs " << se;
  EXPECT_EQ(e.estimand, "difference in means");
  std::printf("MLRATE vs QR OLS: effect rel %.2g, HC1 SE rel %.2g\n", rel(e.effect, ls.beta[1]), rel(e.se, se));
}

// ---------------------------------------------------------------- STATE

Options state_options() {
  Options o;
  o.predictor = "ridge";
  o.state_tol = 1e-11;
  o.state_max_iter = 5000;
  return o;
}

TEST(AbtestState, NuFixedAtOneMillionIsOls) {
  const Data a = make_data(4000, 3);
  const Units u = units_of(a);
  Options o = state_options();
  o.state_estimate_nu = false;
  o.state_nu = 1e6;
  auto comm = dist::make_local_communicator();
  Analysis an(u, o, *comm);
  const std::vector<double> g = an.prediction();
  const Estimate e = make_estimator("state")->estimate(an);
  std::vector<std::vector<double>> cols(3, std::vector<double>(g.size()));
  for (size_t i = 0; i < g.size(); ++i) cols[0][i] = 1, cols[1][i] = a.t[i], cols[2][i] = g[i];
  const LeastSquares ls = least_squares(cols, a.y);
  // The weights (nu + 1) / (nu + q) are 1 - (q - 1) / nu: the WLS moves off OLS by O(1/nu) times the residuals' scale.
  EXPECT_NEAR(e.effect, ls.beta[1], 1e-6);
  EXPECT_NEAR(e.details["gamma"].get<double>(), ls.beta[2], 1e-6);
  EXPECT_NEAR(e.details["alpha"].get<double>(), ls.beta[0], 1e-5);
  EXPECT_EQ(e.details["nu"].get<double>(), 1e6);
  EXPECT_TRUE(e.details["converged"].get<bool>());
  EXPECT_EQ(e.estimand, "t-model location shift");
  std::printf("STATE(nu = 1e6) - OLS: effect %.3g, gamma %.3g, alpha %.3g\n", e.effect - ls.beta[1],
              e.details["gamma"].get<double>() - ls.beta[2], e.details["alpha"].get<double>() - ls.beta[0]);
  // nu = 1e12: the weights are 1 to rounding, so STATE is OLS to rounding.
  o.state_nu = 1e12;
  Analysis an12(u, o, *comm);
  const Estimate e12 = make_estimator("state")->estimate(an12);
  EXPECT_LT(rel(e12.effect, ls.beta[1]), 1e-9);
  EXPECT_LT(rel(e12.details["gamma"].get<double>(), ls.beta[2]), 1e-9);
  EXPECT_LT(rel(e12.details["alpha"].get<double>(), ls.beta[0]), 1e-9);
}

TEST(AbtestState, InteractionModelSeAndNonConvergenceWarning) {
  const Data a = make_data(3000, 21, false, 3.0);
  const Units u = units_of(a);
  auto comm = dist::make_local_communicator();
  Options o = state_options();
  o.state_interaction = true;
  o.state_estimate_nu = false;
  o.state_nu = 1e12;  // Gaussian limit: STATE with the interaction is MLRATE's OLS
  o.state_se = "model";
  Analysis an(u, o, *comm);
  const Estimate st = make_estimator("state")->estimate(an), ml = make_estimator("mlrate")->estimate(an);
  EXPECT_LT(rel(st.effect, ml.effect), 1e-9);
  EXPECT_LT(rel(st.details["interaction"].get<double>(), ml.details["interaction"].get<double>()), 1e-8);
  EXPECT_EQ(st.se, st.details["se_model"].get<double>());
  EXPECT_EQ(st.details["se_used"], "model");

  o = state_options();
  o.state_max_iter = 2;
  Analysis an2(u, o, *comm);
  const Estimate e = make_estimator("state")->estimate(an2);
  EXPECT_FALSE(e.details["converged"].get<bool>());
  ASSERT_GE(e.warnings.size(), 1u);
  EXPECT_HAS(e.warnings[0], "did not converge in 2 iterations (last relative change ");
  // Two iterations from OLS leave nu far from its maximum, where the observed information need not be positive
  // definite: then the SE falls back to the fixed-scale sandwich, and says so.
  if (e.warnings.size() == 2) {
    EXPECT_TRUE(e.details["se_sandwich"] == e.details["se_sandwich_fixed_scale"]);
    EXPECT_HAS(e.warnings[1], "the SE is the sandwich with sigma2 and nu held fixed");
  }
  EXPECT_LE(e.warnings.size(), 2u);
  EXPECT_EQ(e.details["loglik_trace"].size(), 3u);
}

// STATE's E-step pass (blocked, vectorised, sum log(nu + q) as logs of products of four) against a unit-by-unit float64
// reference at the reported fit: the observed log-likelihood and the weighted normal equations sum w r z = 0, with the
// interaction column, nu estimated, n not a multiple of the block or of 4, and outliers ~1e6 sigma out (q ~ 1e12).
TEST(AbtestState, EStepPassMatchesAUnitByUnitReferenceWithExtremeOutliers) {
  Data a = make_data(5001, 23, false, 3.0);  // 5001 = 9 blocks of 512 and a partial one (not a multiple of 4)
  a.y[1024] = a.y[1025] = 1e6;
  a.y[3000] = -3e6;
  const Units u = units_of(a);
  for (const bool interaction : {false, true}) {
    Options o = state_options();
    o.predictor = "ridge2";
    o.state_interaction = interaction;
    auto comm = dist::make_local_communicator();
    Analysis an(u, o, *comm);
    const std::vector<double> g = an.prediction();
    const Estimate e = make_estimator("state")->estimate(an);
    const auto& dt = e.details;
    ASSERT_TRUE(dt["converged"].get<bool>()) << e.to_json().dump();
    const double nu = dt["nu"], sigma2 = dt["sigma2"], alpha = dt["alpha"], gamma = dt["gamma"], gbar = dt["gbar"];
    const double eta = interaction ? dt["interaction"].get<double>() : 0.0;
    long double loglik = 0;
    double grad[4] = {0, 0, 0, 0}, scale[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < g.size(); ++i) {
      const double z[4] = {1.0, double(a.t[i]), g[i], a.t[i] * (g[i] - gbar)};
      const double r = a.y[i] - alpha - e.effect * z[1] - gamma * g[i] - eta * z[3], q = r * r / sigma2;
      loglik += std::lgamma((nu + 1) / 2) - std::lgamma(nu / 2) - 0.5 * std::log(M_PI * nu * sigma2) -
                (nu + 1) / 2 * std::log1p(q / nu);
      const double w = (nu + 1) / (nu + q);
      for (int j = 0; j < 4; ++j) grad[j] += w * r * z[j], scale[j] += std::fabs(w * r * z[j]);
    }
    EXPECT_LT(rel(dt["loglik"].get<double>(), double(loglik)), 1e-12) << "interaction " << interaction;
    for (int j = 0; j < (interaction ? 4 : 3); ++j)
      EXPECT_LT(std::fabs(grad[j]) / scale[j], 1e-8) << "coefficient " << j << ", interaction " << interaction;
    EXPECT_NEAR(e.effect, 0.5, 5 * e.se);
  }
}

// STATE's sandwich SE recomputed independently by finite differences in long double, as the M-estimator over
// every estimated parameter in the parametrisation (alpha, delta, gamma, ln sigma2, ln nu) (the T entry of
// A^-1 B A^-T does not depend on how the others are written) and, for a ratio metric, the linearisation's
// (R_0, Dbar_0, R_1, Dbar_1) with their estimating equations m_i = (Y_i - R_g D_i, D_i - Dbar_g) on arm g and W_i
// rebuilt from them: per-unit scores by central differences of l_i, A = -sum d psi / d theta by central
// differences of the per-unit scores, then the general inverse (A is not symmetric once eta is stacked).
double finite_difference_sandwich_se(const Data& a, const std::vector<double>& g, const Estimate& e, bool ratio) {
  using LD = long double;
  const auto& dt = e.details;
  const int P = ratio ? 9 : 5;
  const size_t n = a.y.size();
  LD th0[9] = {dt["alpha"].get<double>(), e.effect, dt["gamma"].get<double>(), std::log(dt["sigma2"].get<double>()),
               std::log(dt["nu"].get<double>()), 0, 0, 0, 0};
  if (ratio) {  // R_g and Dbar_g from the data
    LD sy[2] = {0, 0}, sd[2] = {0, 0}, cnt[2] = {0, 0};
    for (size_t i = 0; i < n; ++i) sy[a.t[i]] += a.y[i], sd[a.t[i]] += a.d[i], cnt[a.t[i]] += 1;
    for (int arm = 0; arm < 2; ++arm) th0[5 + 2 * arm] = sy[arm] / sd[arm], th0[6 + 2 * arm] = sd[arm] / cnt[arm];
  }
  const LD sigma = std::sqrt(dt["sigma2"].get<double>());
  LD step[9];
  for (int j = 0; j < 9; ++j) step[j] = j < 3 ? 1e-4L * sigma : j < 5 ? 1e-4L : 1e-4L * std::fabs(th0[j]);
  // psi_i(th): the 5 scores (central differences of l_i), then m_i for a ratio metric.
  auto ell = [&](size_t i, const LD* th) {
    const int arm = a.t[i];
    const LD w = ratio ? th[5 + 2 * arm] + (a.y[i] - th[5 + 2 * arm] * a.d[i]) / th[6 + 2 * arm] : LD(a.y[i]);
    const LD s2 = std::exp(th[3]), nu = std::exp(th[4]);
    const LD r = w - th[0] - th[1] * arm - th[2] * g[i];
    return std::lgamma((nu + 1) / 2) - std::lgamma(nu / 2) - 0.5L * std::log(LD(M_PI) * nu * s2) -
           (nu + 1) / 2 * std::log1p(r * r / (nu * s2));
  };
  auto psi = [&](size_t i, const LD* th, LD* out) {
    for (int j = 0; j < 5; ++j) {
      LD up[9], dn[9];
      for (int m = 0; m < 9; ++m) up[m] = dn[m] = th[m];
      up[j] += step[j], dn[j] -= step[j];
      out[j] = (ell(i, up) - ell(i, dn)) / (2 * step[j]);
    }
    if (ratio) {
      const int arm = a.t[i];
      for (int c = 5; c < 9; ++c) out[c] = 0;
      out[5 + 2 * arm] = a.y[i] - th[5 + 2 * arm] * a.d[i];
      out[6 + 2 * arm] = a.d[i] - th[6 + 2 * arm];
    }
  };
  LD A[9][9] = {}, B[9][9] = {};
  for (size_t i = 0; i < n; ++i) {
    LD s[9];
    psi(i, th0, s);
    for (int x = 0; x < P; ++x)
      for (int y = 0; y < P; ++y) B[x][y] += s[x] * s[y];
    for (int b = 0; b < P; ++b) {
      LD up[9], dn[9], su[9], sd[9];
      for (int m = 0; m < 9; ++m) up[m] = dn[m] = th0[m];
      up[b] += step[b], dn[b] -= step[b];
      psi(i, up, su);
      psi(i, dn, sd);
      for (int x = 0; x < P; ++x) A[x][b] -= (su[x] - sd[x]) / (2 * step[b]);
    }
  }
  LD inv[9][9] = {};  // A^-1 by Gauss-Jordan with partial pivoting
  for (int x = 0; x < P; ++x) inv[x][x] = 1;
  for (int c = 0; c < P; ++c) {
    int best = c;
    for (int x = c + 1; x < P; ++x)
      if (std::fabs(A[x][c]) > std::fabs(A[best][c])) best = x;
    for (int y = 0; y < P; ++y) std::swap(A[c][y], A[best][y]), std::swap(inv[c][y], inv[best][y]);
    const LD piv = A[c][c];
    for (int y = 0; y < P; ++y) A[c][y] /= piv, inv[c][y] /= piv;
    for (int x = 0; x < P; ++x)
      if (x != c) {
        const LD f = A[x][c];
        for (int y = 0; y < P; ++y) A[x][y] -= f * A[c][y], inv[x][y] -= f * inv[c][y];
      }
  }
  LD v = 0;
  for (int x = 0; x < P; ++x)
    for (int y = 0; y < P; ++y) v += inv[1][x] * B[x][y] * inv[1][y];
  return double(std::sqrt(v));
}

// STATE (ridge2 covariate, tight tolerance) on `a`, and its sandwich SE again by finite differences.
struct SandwichCheck {
  Estimate e;
  double se_fd = 0, se_fixed = 0;
};
SandwichCheck check_sandwich(const Data& a, bool ratio) {
  const Units u = units_of(a);
  Options o = state_options();
  o.predictor = "ridge2";
  auto comm = dist::make_local_communicator();
  Analysis an(u, o, *comm);
  const std::vector<double> g = an.prediction();
  SandwichCheck c{make_estimator("state")->estimate(an)};
  const auto& dt = c.e.details;
  EXPECT_TRUE(dt["converged"].get<bool>()) << c.e.to_json().dump();
  EXPECT_TRUE(dt["sandwich_includes_nu"].get<bool>()) << c.e.to_json().dump();
  EXPECT_TRUE(c.e.warnings.empty()) << c.e.to_json().dump();
  EXPECT_EQ(dt["se_used"], "sandwich");
  c.se_fd = finite_difference_sandwich_se(a, g, c.e, ratio);
  c.se_fixed = dt["se_sandwich_fixed_scale"];
  std::printf("%s: sandwich %.8g, finite differences %.8g, fixed-scale sandwich %.6g, model %.6g\n",
              ratio ? "ratio metric" : "skewed noise", c.e.se, c.se_fd, c.se_fixed, dt["se_model"].get<double>());
  return c;
}

// The noise is right-skewed and scales with T, where the scale's estimation moves delta-hat: the fixed-scale sandwich
// must then differ from the full one.
TEST(AbtestState, FullSandwichMatchesFiniteDifferencesUnderSkewedNoise) {
  Data a = make_data(3000, 29);
  Rng rng(29, 5);
  for (size_t i = 0; i < a.y.size(); ++i)
    a.y[i] += (std::exp(0.8 * rng.normal()) - std::exp(0.32)) * (a.t[i] ? 3.0 : 1.0);
  const SandwichCheck c = check_sandwich(a, false);
  EXPECT_LT(rel(c.e.se, c.se_fd), 1e-5);
  EXPECT_GT(rel(c.se_fixed, c.e.se), 0.02) << "the scale's estimation should matter under this skew";
}

// A ratio metric: the sandwich stacks the linearisation's R_g and Dbar_g, which the fixed-scale one leaves out. With
// skewed order values the big baskets (large D, large |W - R|) get small weights, so delta-hat moves with R_g.
TEST(AbtestState, RatioSandwichStacksTheLinearisationAgainstFiniteDifferences) {
  Data a = make_data(3000, 31, true);
  Rng rng(31, 5);
  for (double& y : a.y) y *= std::exp(0.6 * rng.normal() - 0.18);  // lognormal order values: skewed, as in spend
  const SandwichCheck c = check_sandwich(a, true);
  EXPECT_LT(rel(c.e.se, c.se_fd), 1e-5);
  EXPECT_GT(rel(c.se_fixed, c.e.se), 0.05) << "the linearisation's estimation should matter on this metric";
}

TEST(AbtestState, PointMassOutcomeIsFlaggedAsDegenerate) {
  Units u;
  u.num_features = 1;
  Rng rng(31, 3);
  for (int i = 0; i < 5000; ++i) {
    const double x = rng.normal();
    u.x.push_back(x);
    u.t.push_back(rng.uniform() < 0.5);
    u.y.push_back(rng.uniform() < 0.8 ? 0.0 : std::exp(1 + 0.3 * x + rng.normal()));  // 80% zeros
  }
  auto comm = dist::make_local_communicator();
  const Estimate e = find(analyse(u, Options{}, *comm, {"state"}), "state");
  EXPECT_TRUE(e.details["degenerate"].get<bool>()) << e.to_json().dump();
  EXPECT_FALSE(e.details["converged"].get<bool>());
  ASSERT_FALSE(e.warnings.empty());
  EXPECT_HAS(e.warnings[0], "the residual scale collapsed");
  EXPECT_HAS(e.warnings[0], "point mass");
  std::printf("point mass: stopped after %d iterations, sigma2 %.3g\n", e.details["iterations"].get<int>(),
              e.details["sigma2"].get<double>());
}

// Dirty data, STATE's use case: a few units a billion times the noise scale out (a bot's order in cents). The robust
// sigma2 ends ~1e-15 of the OLS one, far below the point-mass alarm's 1e-10, yet this is no point mass: the residuals
// are spread, not exactly 0. STATE must fit it and recover the effect; the 80%-zeros case above must still collapse.
TEST(AbtestState, ExtremeOutliersAreNotMistakenForAPointMass) {
  Data a = make_data(20000, 37, false, 3.0);
  for (int64_t i : {100, 5000, 9000, 15000, 19999}) a.y[size_t(i)] += (i % 2 ? -1 : 1) * 1e9;
  const Units u = units_of(a);
  Options o = state_options();  // tol 1e-11: the pass's centring keeps the digits that needs
  auto comm = dist::make_local_communicator();
  Analysis an(u, o, *comm);
  const Estimate e = make_estimator("state")->estimate(an);
  const auto& dt = e.details;
  std::printf("extreme outliers: sigma2 %.4g, nu %.3g, effect %.4f (se %.4f), iterations %d\n",
              dt["sigma2"].get<double>(), dt["nu"].get<double>(), e.effect, e.se, dt["iterations"].get<int>());
  EXPECT_FALSE(dt["degenerate"].get<bool>()) << e.to_json().dump();
  EXPECT_TRUE(dt["converged"].get<bool>()) << e.to_json().dump();
  EXPECT_NEAR(e.effect, 0.5, 5 * e.se);
  EXPECT_LT(e.se, 0.05);
}

TEST(AbtestState, ExactFitIsReportedNotComputedWhileTheOthersStand) {
  Data a = make_data(400, 32);
  for (int64_t i = 0; i < a.size(); ++i) a.y[i] = 2 + 3.0 * a.t[i];  // the outcome is exactly linear in T
  auto comm = dist::make_local_communicator();
  const auto es = analyse(units_of(a), Options{}, *comm);
  ASSERT_EQ(es.size(), 5u);
  EXPECT_EQ(find(es, "dim").effect, 3.0);
  EXPECT_EQ(find(es, "dim").se, 0.0);
  const Estimate& st = find(es, "state");
  EXPECT_TRUE(std::isnan(st.effect));
  ASSERT_EQ(st.warnings.size(), 1u);
  EXPECT_HAS(st.warnings[0], "not computed: test data: state: the OLS residual variance is");
  EXPECT_TRUE(st.to_json()["effect"].is_null());
  EXPECT_NEAR(find(es, "mlrate").effect, 3.0, 1e-12);
}

// On t(3) residuals: the likelihood never decreases, nu is recovered, the EM fixed point solves the likelihood
// equations, and the SE is about half of OLS's ((nu+3)(nu-2)/(nu(nu+1)) = 0.5 at nu = 3).
TEST(AbtestState, HeavyTailsRecoverNuMonotoneLikelihoodStationaryPoint) {
  const Data a = make_data(200000, 4, false, 3.0);
  const Units u = units_of(a);
  Options o = state_options();
  o.predictor = "ridge2";  // g then captures the quadratic f, and the residuals are t(3)
  o.state_tol = 1e-10;
  auto comm = dist::make_local_communicator();
  Analysis an(u, o, *comm);
  const std::vector<double> g = an.prediction();
  const Estimate e = make_estimator("state")->estimate(an);
  const Estimate ml = make_estimator("mlrate")->estimate(an);
  const auto& dt = e.details;
  const double nu = dt["nu"], sigma2 = dt["sigma2"], alpha = dt["alpha"], gamma = dt["gamma"];
  std::printf("STATE on t(3): nu %.4f, iterations %d, effect %.5f (se %.5f), MLRATE %.5f (se %.5f), se ratio^2 %.3f\n",
              nu, dt["iterations"].get<int>(), e.effect, e.se, ml.effect, ml.se, e.se * e.se / (ml.se * ml.se));
  EXPECT_TRUE(dt["converged"].get<bool>()) << e.to_json().dump();
  EXPECT_FALSE(dt["degenerate"].get<bool>());
  EXPECT_TRUE(e.warnings.empty());
  EXPECT_NEAR(nu, 3.0, 0.3);
  EXPECT_NEAR(e.effect, 0.5, 5 * e.se);
  EXPECT_GT(e.se * e.se / (ml.se * ml.se), 0.3);
  EXPECT_LT(e.se * e.se / (ml.se * ml.se), 0.75);
  EXPECT_LT(std::fabs(e.se / dt["se_model"].get<double>() - 1), 0.1) << "sandwich ~ model-based under the t model";

  const std::vector<double> trace = dt["loglik_trace"];
  ASSERT_EQ(trace.size(), size_t(dt["iterations"].get<int>() + 1));
  ASSERT_GE(trace.size(), 3u);
  for (size_t i = 1; i < trace.size(); ++i)
    EXPECT_GE(trace[i], trace[i - 1] - 1e-12 * std::fabs(trace[i - 1])) << "iteration " << i;

  // Stationarity of the observed log-likelihood at (beta, sigma2, nu): the weighted normal equations
  // sum w r z = 0, then d/dsigma2 and d/dnu, each against the size of its terms.
  double grad[3] = {0, 0, 0}, scale[3] = {0, 0, 0}, ds = 0, ds_scale = 0, dnu = 0, dnu_scale = 0;
  const double n = double(g.size());
  for (size_t i = 0; i < g.size(); ++i) {
    const double z[3] = {1.0, double(a.t[i]), g[i]};
    const double r = a.y[i] - alpha - e.effect * a.t[i] - gamma * g[i], q = r * r / sigma2;
    const double w = (nu + 1) / (nu + q);
    for (int j = 0; j < 3; ++j) grad[j] += w * r * z[j], scale[j] += std::fabs(w * r * z[j]);
    ds += w * q - 1, ds_scale += w * q + 1;
    dnu += -0.5 * std::log1p(q / nu) + (nu + 1) / 2 * q / (nu * nu + nu * q);
    dnu_scale += 0.5 * std::log1p(q / nu);
  }
  dnu += n * 0.5 * (digamma((nu + 1) / 2) - digamma(nu / 2) - 1 / nu);
  for (int j = 0; j < 3; ++j) EXPECT_LT(std::fabs(grad[j]) / scale[j], 1e-8) << "coefficient " << j;
  EXPECT_LT(std::fabs(ds) / ds_scale, 1e-8);
  EXPECT_LT(std::fabs(dnu) / dnu_scale, 1e-7);
}

TEST(AbtestState, DisagreesWithDimWhenTheEffectSitsInAFewUnits) {
  Units u;
  u.num_features = 1;
  Rng rng(9, 2);
  for (int i = 0; i < 20000; ++i) {
    const double x = rng.normal();
    const uint8_t t = rng.uniform() < 0.5;
    const bool few = t && rng.uniform() < 0.05;  // 5% of the treated units gain +40: mean effect 2, typical 0
    u.x.push_back(x);
    u.t.push_back(t);
    u.y.push_back(x + rng.normal() + (few ? 40.0 : 0.0));
  }
  Options o;
  o.predictor = "ridge";
  auto comm = dist::make_local_communicator();
  const auto es = analyse(u, o, *comm, {"dim", "state"});
  const Estimate &dim = find(es, "dim"), &st = find(es, "state");
  std::printf("localized effect: DIM %.4f [%.4f, %.4f], STATE %.4f [%.4f, %.4f]\n", dim.effect, dim.ci_low, dim.ci_high,
              st.effect, st.ci_low, st.ci_high);
  EXPECT_NEAR(dim.effect, 2.0, 0.4);
  EXPECT_LT(std::fabs(st.effect), 0.2);
  ASSERT_FALSE(st.warnings.empty());
  EXPECT_NE(st.warnings.back().find("t-model location shift"), std::string::npos) << st.warnings.back();
  EXPECT_NE(st.warnings.back().find("mean effect"), std::string::npos);
}

// ---------------------------------------------------------------- ratio metrics

TEST(AbtestRatio, DimOnLinearisedMetricIsRatioDifferenceWithDeltaMethodSe) {
  const Data a = make_data(5000, 6, true);
  auto comm = dist::make_local_communicator();
  const Estimate e = find(analyse(units_of(a), Options{}, *comm, {"dim"}), "dim");
  // R_g = sum Y / sum D per arm; Var(R_g) = (s2_Y - 2 R s_YD + R^2 s2_D) / (n_g Dbar_g^2) (Deng et al. 2018), with
  // sample (n - 1) moments; two passes here.
  double var[2], ratio[2];
  for (int g = 0; g < 2; ++g) {
    double n = 0, sy = 0, sd = 0;
    for (int64_t i = 0; i < a.size(); ++i)
      if (a.t[i] == g) n += 1, sy += a.y[i], sd += a.d[i];
    const double my = sy / n, md = sd / n, r = sy / sd;
    double syy = 0, sdd = 0, syd = 0;
    for (int64_t i = 0; i < a.size(); ++i)
      if (a.t[i] == g)
        syy += (a.y[i] - my) * (a.y[i] - my), sdd += (a.d[i] - md) * (a.d[i] - md),
            syd += (a.y[i] - my) * (a.d[i] - md);
    syy /= n - 1, sdd /= n - 1, syd /= n - 1;
    ratio[g] = r;
    var[g] = (syy - 2 * r * syd + r * r * sdd) / (n * md * md);
  }
  EXPECT_NEAR(e.effect, ratio[1] - ratio[0], 1e-12 * std::fabs(ratio[0]));
  EXPECT_LT(rel(e.se, std::sqrt(var[0] + var[1])), 1e-10) << e.se << " vs " << std::sqrt(var[0] + var[1]);
  std::printf("ratio: effect error %.2g, SE relative error %.2g\n", e.effect - (ratio[1] - ratio[0]),
              rel(e.se, std::sqrt(var[0] + var[1])));
  EXPECT_NEAR(e.details["mean_treatment"].get<double>(), ratio[1], 1e-12 * ratio[1]);
  std::printf("ratio: R_t - R_c = %.6f, delta SE %.6f, DIM on W %.6f (SE %.6f)\n", ratio[1] - ratio[0],
              std::sqrt(var[0] + var[1]), e.effect, e.se);
}

TEST(AbtestRatio, AllEstimatorsRunOnARatioMetric) {
  const Data a = make_data(4000, 7, true);
  Options o;
  o.predictor = "ridge2";
  auto comm = dist::make_local_communicator();
  const auto es = analyse(units_of(a), o, *comm);
  ASSERT_EQ(es.size(), 5u);
  for (const Estimate& e : es) {
    EXPECT_TRUE(std::isfinite(e.effect) && e.se > 0) << e.to_json().dump();
    EXPECT_NEAR(e.effect, 0.5, 6 * e.se) << e.method;  // the true ratio difference is 0.5 (per order)
  }
  EXPECT_GT(find(es, "mlrate").variance_reduction, 0.3);
}

// ---------------------------------------------------------------- cross-fitting

TEST(AbtestPrediction, NeverUsesTheUnitsOwnFold) {
  Data a = make_data(2000, 8);
  auto comm = dist::make_local_communicator();
  Options o;
  const Units u0 = units_of(a);
  Analysis a0(u0, o, *comm);
  const std::vector<double> g0 = a0.prediction();
  const int64_t j = 123;
  a.y[j] += 1e4;  // an outlier in unit j moves every prediction of other folds' units, never its own
  const Units u1 = units_of(a);
  Analysis a1(u1, o, *comm);
  const std::vector<double> g1 = a1.prediction();
  EXPECT_NEAR(g1[j], g0[j], 1e-9 * std::fabs(g0[j]) + 1e-9);
  int moved = 0;
  for (int64_t i = 0; i < a.size(); ++i)
    if (fold_of(o.seed, i, o.folds) == fold_of(o.seed, j, o.folds)) {
      EXPECT_NEAR(g1[i], g0[i], 1e-8) << "unit " << i << " shares unit j's fold";
    } else {
      moved += std::fabs(g1[i] - g0[i]) > 1e-3;
    }
  EXPECT_GT(moved, 500);
}

// ---------------------------------------------------------------- distributed

// Every estimate on W in-process ranks with uneven shards (cuts: the shards' first units) against one process.
double max_rank_rel = 0;  // the largest relative difference seen, for the log

void expect_same_on_ranks(const Data& a, const Options& o, const std::vector<int64_t>& cuts) {
  auto comm = dist::make_local_communicator();
  const std::vector<Estimate> one = analyse(units_of(a), o, *comm);
  const int W = int(cuts.size());
  std::vector<std::vector<Estimate>> got(static_cast<size_t>(W));
  const auto err = test::run_ranks(W, [&](dist::Communicator& c) {
    const int r = c.rank();
    const int64_t end = r + 1 < W ? cuts[size_t(r) + 1] : a.size();
    got[size_t(r)] = analyse(units_of(a, cuts[size_t(r)], end), o, c);
  });
  for (int r = 0; r < W; ++r) {
    ASSERT_TRUE(err[size_t(r)] == nullptr) << test::error_text(err[size_t(r)]);
    ASSERT_EQ(got[size_t(r)].size(), one.size());
    for (size_t m = 0; m < one.size(); ++m) {
      const Estimate &x = got[size_t(r)][m], &y = one[m];
      EXPECT_EQ(x.method, y.method);
      max_rank_rel = std::max({max_rank_rel, rel(x.effect, y.effect), rel(x.se, y.se)});
      EXPECT_LT(rel(x.effect, y.effect), 1e-10) << W << " ranks, rank " << r << ", " << y.method;
      EXPECT_LT(rel(x.se, y.se), 1e-10) << W << " ranks, rank " << r << ", " << y.method;
      if (y.method == "state") {
        // nu is pinned by the EM's stopping rule (|d ln nu| < state.tol = 1e-8), and sums in another order can move
        // a SQUAREM accept/reject decision, so the ranks agree on nu to that tolerance, not to rounding.
        EXPECT_LT(rel(x.details["nu"].get<double>(), y.details["nu"].get<double>()), 1e-8) << W << " ranks";
      }
    }
  }
}

TEST(AbtestDistributed, SameEstimatesOnTwoAndThreeRanksWithUnevenShards) {
  Options o = state_options();
  o.predictor = "ridge2";
  o.folds = 3;
  const Data count = make_data(3000, 10, false, 4.0);
  expect_same_on_ranks(count, o, {0, 700});
  expect_same_on_ranks(count, o, {0, 400, 2100});
  expect_same_on_ranks(count, o, {0, 1500, 1500, 2200});  // an empty rank
  const Data ratio = make_data(3000, 11, true);
  expect_same_on_ranks(ratio, o, {0, 2500});
  expect_same_on_ranks(ratio, o, {0, 1000, 1100});
  std::printf("ranks vs one process: largest relative difference %.2g\n", max_rank_rel);
}

TEST(AbtestDistributed, EveryRankThrowsTheSameErrorNamingTheGlobalRow) {
  Data a = make_data(600, 12);
  a.y[450] = NAN;  // rank 1's unit 150 of 2 ranks split at 300
  std::vector<std::string> msgs(2);
  const auto err = test::run_ranks(2, [&](dist::Communicator& c) {
    const int64_t b = c.rank() == 0 ? 0 : 300, e = c.rank() == 0 ? 300 : 600;
    try {
      analyse(units_of(a, b, e), Options{}, c);
    } catch (const DataError& x) {
      msgs[size_t(c.rank())] = x.what();
    }
  });
  EXPECT_TRUE(err[0] == nullptr && err[1] == nullptr) << test::error_text(err[0]) << test::error_text(err[1]);
  EXPECT_EQ(msgs[0], msgs[1]);
  EXPECT_NE(msgs[0].find("column 'y' has NaN at row 451"), std::string::npos) << msgs[0];
}

// ---------------------------------------------------------------- bad input

std::string data_error(const Units& u, const std::vector<std::string>& methods = {}) {
  auto comm = dist::make_local_communicator();
  try {
    analyse(u, Options{}, *comm, methods);
  } catch (const DataError& e) {
    return e.what();
  }
  return "(no DataError)";
}

TEST(AbtestBadInput, ArmsAndEmptyData) {
  const Data a = make_data(100, 13);
  Units u = units_of(a);
  u.t.assign(100, 1);
  std::string m = data_error(u);
  EXPECT_HAS(m, "test data: arm control (t = 0) has no units: all 100 units are in arm treatment");
  u.t.assign(100, 0);
  m = data_error(u);
  EXPECT_HAS(m, "arm treatment (t = 1) has no units");
  EXPECT_HAS(m, "check the arm column 't'");
  u.t[7] = 1;
  EXPECT_HAS(data_error(u), "arm treatment (t = 1) has only 1 unit");
  EXPECT_HAS(data_error(Units{}), "the A/B data: no units");
  u.t[8] = 2;
  EXPECT_HAS(data_error(u), "column 't' is 2 at row 9");
  u = units_of(a);
  u.t.pop_back();
  EXPECT_HAS(data_error(u), "column lengths differ: column 't' has 99 values but 'y' has 100");
}

TEST(AbtestBadInput, NonFiniteValuesNameColumnAndRow) {
  const Data a = make_data(100, 14);
  Units u = units_of(a);
  u.offset = 1000;  // rows are global: offset + i + 1
  u.y[3] = NAN;
  u.y[50] = INFINITY;
  EXPECT_HAS(data_error(u), "test data: column 'y' has NaN at row 1004 (2 non-finite values in all); drop or impute");
  u = units_of(a);
  u.pre[9] = INFINITY;
  u.pre_name = "gmv_last_month";
  EXPECT_HAS(data_error(u), "column 'gmv_last_month' has inf at row 10");
  u = units_of(a);
  u.x[3 * 20 + 1] = -INFINITY;
  EXPECT_HAS(data_error(u), "feature column 'x2' has -inf at row 21");
  u.feature_names = {"age", "visits", "tenure"};
  EXPECT_HAS(data_error(u), "feature column 'visits' has -inf at row 21");
  const Data r = make_data(100, 15, true);
  u = units_of(r);
  u.d[40] = NAN;
  EXPECT_HAS(data_error(u), "column 'd' has NaN at row 41");
}

// Values whose squares overflow double (measured: a metric near 1e300 gave se = null, p = 1 with no warning) are
// refused naming the column and row; values just inside the bound give every estimator finite, scaled answers.
TEST(AbtestBadInput, ValuesTooLargeToSquareAreRefusedAndTheBoundIsUsable) {
  const Data a = make_data(400, 21);
  Units u = units_of(a);
  for (double& v : u.y) v *= 1e300;
  std::string m = data_error(u);
  EXPECT_HAS(m, "test data: column 'y' has ");
  EXPECT_HAS(m, "at row 1 (400 values beyond +-1e+70)");
  EXPECT_HAS(m, "rescale the column");
  u = units_of(a);
  u.pre[7] = -3e200;
  u.pre_name = "gmv_last_month";
  EXPECT_HAS(data_error(u), "column 'gmv_last_month' has -3e+200 at row 8 (1 values beyond");
  u = units_of(a);
  u.x[5 * 3 + 2] = 1e80;
  u.feature_names = {"age", "visits", "tenure"};
  EXPECT_HAS(data_error(u), "feature column 'tenure' has 1e+80 at row 6");
  // At 1e65 (inside the bound) every estimator answers, and DIM and CUPED scale exactly with the metric.
  auto comm = dist::make_local_communicator();
  const std::vector<Estimate> base = analyse(units_of(a), Options{}, *comm);
  u = units_of(a);
  for (double& v : u.y) v *= 1e65;
  for (double& v : u.pre) v *= 1e65;
  const std::vector<Estimate> big = analyse(u, Options{}, *comm);
  ASSERT_EQ(base.size(), big.size());
  for (size_t k = 0; k < big.size(); ++k) {
    SCOPED_TRACE(big[k].method);
    EXPECT_TRUE(std::isfinite(big[k].se) && big[k].se > 0);
    EXPECT_TRUE(std::isfinite(big[k].p_value));
    if (big[k].method == "dim" || big[k].method == "cuped") {
      EXPECT_NEAR(big[k].effect / 1e65, base[k].effect, 1e-12 * std::fabs(base[k].effect) + 1e-14);
      EXPECT_NEAR(big[k].se / 1e65, base[k].se, 1e-12 * base[k].se);
      EXPECT_NEAR(big[k].p_value, base[k].p_value, 1e-9);
    }
  }
}

TEST(AbtestBadInput, ZeroDenominatorAndZeroVarianceCovariate) {
  const Data r = make_data(100, 16, true);
  Units u = units_of(r);
  u.d[5] = 0;
  u.d_name = "orders";
  std::string m = data_error(u);
  EXPECT_HAS(m, "column 'orders' (the ratio metric's denominator) is 0 at row 6");
  EXPECT_HAS(m, "drop the units without orders");
  EXPECT_HAS(m, "count metric");
  u = units_of(make_data(100, 17));
  u.pre.assign(100, 3.5);
  m = data_error(u);
  EXPECT_HAS(m, "the pre-period covariate 'pre' has zero variance (all 100 units have pre = 3.5)");
  EXPECT_HAS(m, "carries no information");
  EXPECT_HAS(m, "drop the covariate");
  u = units_of(make_data(100, 17));
  u.x.clear();
  u.num_features = 0;
  EXPECT_HAS(data_error(u, {"mlrate"}), "the estimator 'mlrate' does not apply");
}

// ---------------------------------------------------------------- options and registry

TEST(AbtestOptions, ReadsAndValidatesKeys) {
  const Options o = Options::from(Config::from_string(
      "abtest: {alpha: 0.1, folds: 5, seed: 7, predictor: ridge, ridge_lambda: 0.5, state: {estimate_nu: false, nu: "
      "4, max_iter: 50, tol: 1e-6, interaction: true, se: model}}"));
  EXPECT_EQ(o.alpha, 0.1);
  EXPECT_EQ(o.folds, 5);
  EXPECT_EQ(o.seed, 7u);
  EXPECT_EQ(o.predictor, "ridge");
  EXPECT_FALSE(o.state_estimate_nu);
  EXPECT_EQ(o.state_nu, 4);
  EXPECT_TRUE(o.state_interaction);
  EXPECT_EQ(o.state_se, "model");
  auto bad = [](const std::string& yaml) {
    try {
      Options::from(Config::from_string(yaml));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no ConfigError)");
  };
  EXPECT_HAS(bad("abtest: {folds: 1}"), "abtest.folds is 1");
  EXPECT_HAS(bad("abtest: {alpha: 1.5}"), "abtest.alpha is 1.5");
  EXPECT_HAS(bad("abtest: {predictor: xgb}"), "abtest.predictor is 'xgb'");
  EXPECT_HAS(bad("abtest: {state: {se: bootstrap}}"), "abtest.state.se is 'bootstrap'");
  EXPECT_HAS(bad("abtest: {state: {nu_min: 5, nu_max: 4}}"), "abtest.state.nu_max is 4");
  EXPECT_HAS(bad("abtest: {state: {nu: 1}}"), "abtest.state.nu is 1, the EM's starting value");
}

TEST(AbtestRegistry, NamesInOrderAndUnknownName) {
  EXPECT_EQ(estimator_names(), (std::vector<std::string>{"dim", "cuped", "cupac", "mlrate", "state"}));
  try {
    make_estimator("stat");
    FAIL() << "no ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_HAS(std::string(e.what()),
               "unknown A/B estimator 'stat'; known estimators: dim, cuped, cupac, mlrate, state");
  }
}

}  // namespace
}  // namespace dfcl::abtest
