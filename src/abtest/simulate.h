// \brief Simulated A/B tests with a known truth (docs/abtest.md, "Simulations"): a Gaussian linear outcome (A/A or a
// constant effect), the spec's DGP-1 (methods-state-cluster.md A.10) with normal, Student-t or outlier noise, and a
// ratio metric (revenue per order) with a closed-form true effect.
//
// Every unit is a pure function of (seed, replicate, global unit index) through the counter-based Rng (core/rng.h):
// replicate r of seed s is the same data on any thread count, and a rank that generates units [begin, end) holds
// exactly those rows of the one-process data set (so a sharded analysis can be checked against the whole).
#pragma once
#include <cstdint>  // for int64_t, uint64_t
#include <string>   // for std::string

#include "abtest/abtest.h"  // for Units

namespace dfcl::abtest {

/// One data-generating process and its noise.
struct SimSpec {
  /// linear: 5 N(0,1) features, Y = 20 + 2 X1 + X2 - X3 + 0.5 X4 + effect T + noise, pre = that signal + N(0, 1.5^2)
  ///         (with normal noise and effect 0: the A/A test; Y, pre and X jointly Gaussian);
  /// dgp1:   the spec's DGP-1: X ~ N(mu, I5), mu = (5, 0, 3, 3, 7), Y = b(X) + T tau(X) + noise,
  ///         b = 10 sin(pi X1 X2) + 6 X3^2 + 10 |X4| + 5 |X5| + 50, tau = X1 X3 + ln(1 + e^X2), pre = X3 (A.9's CUPED
  ///         covariate);
  /// ratio:  revenue per order: D = 1 + Poisson(exp(0.5 + 0.5 X1) (1 + 0.05 T)) orders, order value
  ///         V = exp(3 - 0.2 X1 + 0.3 X2 + 0.2 X3 + 0.5 Z) (1 + 0.02 T), numerator Y = D V, denominator D; pre = the
  ///         same unit's pre-period revenue (independent draws of D and Z, no treatment); `noise` is ignored.
  std::string dgp = "linear";
  /// normal: sigma N(0,1); t: sigma t(nu) (scale sigma, drawn as N(0,1) / sqrt(chi2_nu / nu)); outliers: sigma N(0,1),
  /// and with probability outlier_frac the unit's outcome is instead uniform over the integers in
  /// [m + 4 s, m + 20 s] (m, s: mean and SD of the treated potential outcome without outliers) in either arm, so an
  /// outlier carries no effect.
  std::string noise = "normal";
  double nu = 3;
  double sigma = 25;
  double outlier_frac = 0.002;
  double effect = 0;         // linear: the constant effect
  double treat_share = 0.5;  // P(T = 1), a Bernoulli draw per unit

  /// For tables: "dgp1, t(3) noise", "linear A/A", ...
  std::string label() const;
  /// Throws ConfigError naming the field (unknown dgp or noise, nu <= 0, sigma < 0, shares outside (0, 1)).
  void validate() const;
};

/// The population average treatment effect the estimators should cover: the constant effect (linear), E[tau(X)]
/// (dgp1; times 1 - outlier_frac with outliers, whose effect is 0), R_1 - R_0 with R_t = E[Y | t] / E[D | t] (ratio).
/// Closed forms, with E[ln(1 + e^X2)] by quadrature.
double true_effect(const SimSpec& spec);

/// Units [begin, end) of replicate `replicate` (offset = begin): y, d (ratio only), t, pre and 5 features.
Units simulate(const SimSpec& spec, uint64_t seed, uint64_t replicate, int64_t begin, int64_t end);

/// This rank's share of an n-unit replicate: units [n rank / world, n (rank + 1) / world).
Units simulate_shard(const SimSpec& spec, uint64_t seed, uint64_t replicate, int64_t n, int rank, int world);

}  // namespace dfcl::abtest
