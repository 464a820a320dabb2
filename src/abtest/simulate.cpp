// \brief Simulated A/B tests with a known truth: the linear/A-A, DGP-1 and ratio-metric processes (simulate.h).
#include "abtest/simulate.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::max
#include <cmath>      // for std::exp, std::log, std::log1p, std::sqrt, std::sin, std::ceil, std::floor
#include <map>        // for std::map
#include <mutex>      // for std::mutex, std::lock_guard
#include <utility>    // for std::pair

#include "core/error.h"  // for ConfigError
#include "core/rng.h"    // for Rng, mix64

namespace dfcl::abtest {

namespace {

constexpr int kFeatures = 5;
constexpr double kPi = 3.14159265358979323846;

// DGP-1 (spec A.10): feature means (numpy's randint(0, 10, 5) at seed 0 gives these; whether the author's script drew
// exactly them is unverified).
constexpr double kMu1[kFeatures] = {5, 0, 3, 3, 7};

// Ratio DGP: orders D = 1 + Poisson(exp(kA0 + kA1 X1) (1 + kTauD T)), order value
// V = exp(kB0 + kC[0] X1 + kC[1] X2 + kC[2] X3 + kS Z) (1 + kTauV T).
constexpr double kA0 = 0.5, kA1 = 0.5, kTauD = 0.05;
constexpr double kB0 = 3, kC[3] = {-0.2, 0.3, 0.2}, kS = 0.5, kTauV = 0.02;

enum class Dgp { kLinear, kDgp1, kRatio };
enum class Noise { kNormal, kT, kOutliers };

Dgp dgp_of(const SimSpec& s) {
  if (s.dgp == "linear") return Dgp::kLinear;
  if (s.dgp == "dgp1") return Dgp::kDgp1;
  if (s.dgp == "ratio") return Dgp::kRatio;
  throw ConfigError(fmt::format("simulation dgp '{}' is unknown; use linear, dgp1 or ratio", s.dgp));
}

Noise noise_of(const SimSpec& s) {
  if (s.noise == "normal") return Noise::kNormal;
  if (s.noise == "t") return Noise::kT;
  if (s.noise == "outliers") return Noise::kOutliers;
  throw ConfigError(fmt::format("simulation noise '{}' is unknown; use normal, t or outliers", s.noise));
}

/// Gamma(shape a, rate 1): Marsaglia and Tsang (2000); a < 1 through Gamma(a + 1) U^(1/a).
double gamma_draw(Rng& rng, double a) {
  if (a < 1) return gamma_draw(rng, a + 1) * std::pow(rng.uniform_open(), 1.0 / a);
  const double d = a - 1.0 / 3, c = 1 / std::sqrt(9 * d);
  for (;;) {
    double x, v;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = rng.uniform_open();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (std::log(u) < 0.5 * x * x + d * (1 - v + std::log(v))) return d * v;
  }
}

/// Student t(nu), unit scale: N(0,1) / sqrt(chi2_nu / nu), chi2_nu = 2 Gamma(nu / 2).
double t_draw(Rng& rng, double nu) {
  const double z = rng.normal();
  return z / std::sqrt(2 * gamma_draw(rng, nu / 2) / nu);
}

/// Poisson(lambda) by Knuth's product of uniforms, in parts of mean <= 20 (a sum of Poissons is Poisson), so
/// exp(-part) never underflows.
int64_t poisson_draw(Rng& rng, double lambda) {
  const int parts = lambda > 20 ? int(std::ceil(lambda / 20)) : 1;
  const double limit = std::exp(-lambda / parts);
  int64_t k = 0;
  for (int p = 0; p < parts; ++p)
    for (double prod = rng.uniform_open(); prod > limit; prod *= rng.uniform_open()) ++k;
  return k;
}

/// E[ln(1 + e^X)], X ~ N(mu, 1): composite Simpson over mu +- 12 (error far below 1e-12).
double softplus_mean(double mu) {
  const int m = 24000;  // even
  const double h = 24.0 / m;
  double sum = 0;
  for (int k = 0; k <= m; ++k) {
    const double z = -12 + k * h, x = mu + z;
    const double f = std::exp(-0.5 * z * z) / std::sqrt(2 * kPi) * (x > 30 ? x : std::log1p(std::exp(x)));
    sum += f * (k == 0 || k == m ? 1 : (k % 2 ? 4 : 2));
  }
  return sum * h / 3;
}

double dgp1_baseline(const double* x) {
  return 10 * std::sin(kPi * x[0] * x[1]) + 6 * x[2] * x[2] + 10 * std::abs(x[3]) + 5 * std::abs(x[4]) + 50;
}
double dgp1_tau(const double* x) { return x[0] * x[2] + (x[1] > 30 ? x[1] : std::log1p(std::exp(x[1]))); }
double linear_signal(const double* x) { return 2 * x[0] + x[1] - x[2] + 0.5 * x[3]; }

/// Outlier range [m + 4 s, m + 20 s] as integers, (m, s) the mean and SD of the treated potential outcome without
/// outliers: closed form for linear, a fixed-seed Monte Carlo of 2^21 units for dgp1 (cached per sigma).
std::pair<double, double> outlier_range(const SimSpec& spec, Dgp dgp) {
  double m, s;
  if (dgp == Dgp::kLinear) {
    m = 20 + spec.effect;
    s = std::sqrt(4 + 1 + 1 + 0.25 + spec.sigma * spec.sigma);
  } else {
    static std::mutex mu;
    static std::map<double, std::pair<double, double>> cache;
    std::lock_guard<std::mutex> lk(mu);
    auto it = cache.find(spec.sigma);
    if (it == cache.end()) {
      const int64_t n = int64_t(1) << 21;
      double sum = 0, sum2 = 0;
      for (int64_t i = 0; i < n; ++i) {
        Rng rng(0xD6E1u, 0, uint64_t(i));  // a fixed seed: the range is a constant of the DGP
        double x[kFeatures];
        for (int k = 0; k < kFeatures; ++k) x[k] = kMu1[k] + rng.normal();
        const double y1 = dgp1_baseline(x) + dgp1_tau(x) + spec.sigma * rng.normal();
        sum += y1, sum2 += y1 * y1;
      }
      const double mean = sum / n;
      it = cache.emplace(spec.sigma, std::make_pair(mean, std::sqrt(std::max(0.0, sum2 / n - mean * mean)))).first;
    }
    m = it->second.first, s = it->second.second;
  }
  return {std::ceil(m + 4 * s), std::floor(m + 20 * s)};
}

}  // namespace

std::string SimSpec::label() const {
  const std::string noise_label = noise == "t"          ? fmt::format("t({:g}) noise", nu)
                                  : noise == "outliers" ? fmt::format("{:g}% outliers", 100 * outlier_frac)
                                                        : "normal noise";
  if (dgp == "ratio") return "ratio metric (revenue per order)";
  if (dgp == "linear" && noise == "normal" && effect == 0) return "A/A (Gaussian)";
  return fmt::format("{}, {}", dgp, noise_label);
}

void SimSpec::validate() const {
  dgp_of(*this);
  noise_of(*this);
  if (!(nu > 0)) throw ConfigError(fmt::format("simulation nu = {} must be positive", nu));
  if (!(sigma >= 0)) throw ConfigError(fmt::format("simulation sigma = {} must be >= 0", sigma));
  if (!(outlier_frac >= 0 && outlier_frac < 1))
    throw ConfigError(fmt::format("simulation outlier_frac = {} must lie in [0, 1)", outlier_frac));
  if (!(treat_share > 0 && treat_share < 1))
    throw ConfigError(fmt::format("simulation treat_share = {} must lie in (0, 1)", treat_share));
}

double true_effect(const SimSpec& spec) {
  spec.validate();
  switch (dgp_of(spec)) {
    case Dgp::kLinear:
      return spec.noise == "outliers" ? (1 - spec.outlier_frac) * spec.effect : spec.effect;
    case Dgp::kDgp1: {
      const double ate = kMu1[0] * kMu1[2] + softplus_mean(kMu1[1]);  // E[X1 X3] + E[ln(1 + e^X2)], independent
      return spec.noise == "outliers" ? (1 - spec.outlier_frac) * ate : ate;
    }
    case Dgp::kRatio: {
      // D and V are independent given X, so E[D V | t] = E[V | t] + E[lambda V | t]; lognormal moments in closed form.
      const double e_lambda = std::exp(kA0 + 0.5 * kA1 * kA1);
      const double c2 = kC[1] * kC[1] + kC[2] * kC[2] + kS * kS;
      const double e_v = std::exp(kB0 + 0.5 * (kC[0] * kC[0] + c2));
      const double e_lambda_v = std::exp(kA0 + kB0 + 0.5 * ((kA1 + kC[0]) * (kA1 + kC[0]) + c2));
      double r[2];
      for (int t = 0; t < 2; ++t) {
        const double fd = 1 + kTauD * t, fv = 1 + kTauV * t;
        r[t] = fv * (e_v + fd * e_lambda_v) / (1 + fd * e_lambda);
      }
      return r[1] - r[0];
    }
  }
  return 0;
}

Units simulate(const SimSpec& spec, uint64_t seed, uint64_t replicate, int64_t begin, int64_t end) {
  spec.validate();
  if (begin < 0 || end < begin)
    throw ConfigError(fmt::format("simulate: unit range [{}, {}) is not a range", begin, end));
  const Dgp dgp = dgp_of(spec);
  const Noise noise = noise_of(spec);
  const std::pair<double, double> range =
      noise == Noise::kOutliers && dgp != Dgp::kRatio ? outlier_range(spec, dgp) : std::make_pair(0.0, 0.0);
  const uint64_t stream = mix64(replicate * 8 + uint64_t(dgp));

  const int64_t n = end - begin;
  Units u;
  u.y.resize(n);
  u.t.resize(n);
  u.pre.resize(n);
  u.x.resize(n * kFeatures);
  if (dgp == Dgp::kRatio) u.d.resize(n);
  u.num_features = kFeatures;
  u.offset = begin;
  u.where = fmt::format("simulated {}, seed {}, replicate {}", spec.label(), seed, replicate);

  for (int64_t j = 0; j < n; ++j) {
    Rng rng(seed, stream, uint64_t(begin + j));
    const int t = rng.uniform() < spec.treat_share ? 1 : 0;
    double* x = &u.x[j * kFeatures];
    for (int k = 0; k < kFeatures; ++k) x[k] = (dgp == Dgp::kDgp1 ? kMu1[k] : 0) + rng.normal();
    u.t[j] = uint8_t(t);

    if (dgp == Dgp::kRatio) {
      const double lambda = std::exp(kA0 + kA1 * x[0]);
      const double v_index = kB0 + kC[0] * x[0] + kC[1] * x[1] + kC[2] * x[2];
      const double orders = 1 + double(poisson_draw(rng, lambda * (1 + kTauD * t)));
      const double value = std::exp(v_index + kS * rng.normal()) * (1 + kTauV * t);
      const double pre_orders = 1 + double(poisson_draw(rng, lambda));
      u.pre[j] = pre_orders * std::exp(v_index + kS * rng.normal());
      u.y[j] = orders * value;
      u.d[j] = orders;
      continue;
    }

    double eps = noise == Noise::kT ? t_draw(rng, spec.nu) : rng.normal();
    eps *= spec.sigma;
    double y;
    if (dgp == Dgp::kLinear) {
      const double h = linear_signal(x);
      u.pre[j] = h + 1.5 * rng.normal();
      y = 20 + h + spec.effect * t + eps;
    } else {
      u.pre[j] = x[2];
      y = dgp1_baseline(x) + t * dgp1_tau(x) + eps;
    }
    if (noise == Noise::kOutliers && rng.uniform() < spec.outlier_frac) {
      const double width = range.second - range.first + 1;
      y = range.first + std::floor(rng.uniform() * width);
    }
    u.y[j] = y;
  }
  return u;
}

Units simulate_shard(const SimSpec& spec, uint64_t seed, uint64_t replicate, int64_t n, int rank, int world) {
  if (world < 1 || rank < 0 || rank >= world || n < 0)
    throw ConfigError(fmt::format("simulate_shard: rank {} of {} ranks, n = {} is not a shard", rank, world, n));
  return simulate(spec, seed, replicate, n * rank / world, n * (rank + 1) / world);
}

}  // namespace dfcl::abtest
