// \brief Generator: the data-generating process of docs/data.md, row by row.
#include "data/generator.h"

#include <fmt/format.h>  // for fmt::format

#include <cmath>  // for std::exp, std::log1p, std::sqrt

#include "core/config.h"    // for Config
#include "core/error.h"     // for ConfigError
#include "core/parallel.h"  // for parallel_for
#include "core/rng.h"       // for Rng
#include "core/threads.h"   // for resolve_threads

namespace dfcl::data {
namespace {
constexpr uint64_t kParamStream = 1, kRowStream = 2;
constexpr int kMaxArms = 64;
double softplus(double z) { return z > 30 ? z : std::log1p(std::exp(z)); }
double sigmoid(double z) { return 1 / (1 + std::exp(-z)); }
}  // namespace

GeneratorConfig GeneratorConfig::from(const Config& s) {
  GeneratorConfig c;
  c.rct_rows = s.get<int64_t>("rct_rows", c.rct_rows);
  c.observational_rows = s.get<int64_t>("observational_rows", c.observational_rows);
  c.features = s.get<int>("features", c.features);
  c.binary_fraction = s.get<double>("binary_fraction", c.binary_fraction);
  c.arms = s.get<int>("arms", c.arms);
  c.arm_values = s.get<std::vector<double>>("arm_values", c.arm_values);
  c.rct_propensity = s.get<std::vector<double>>("rct_propensity", c.rct_propensity);
  c.uplift_scale = s.get<double>("uplift_scale", c.uplift_scale);
  c.diminishing_rate = s.get<double>("diminishing_rate", c.diminishing_rate);
  c.non_diminishing_fraction = s.get<double>("non_diminishing_fraction", c.non_diminishing_fraction);
  c.negative_shift = s.get<double>("negative_shift", c.negative_shift);
  c.purchase_rate = s.get<double>("purchase_rate", c.purchase_rate);
  c.revenue_noise = s.get<double>("revenue_noise", c.revenue_noise);
  c.redemption_base = s.get<double>("redemption_base", c.redemption_base);
  c.logging_strength = s.get<double>("logging_strength", c.logging_strength);
  c.seed = static_cast<uint64_t>(s.get<int64_t>("seed", static_cast<int64_t>(c.seed)));
  c.validate();
  return c;
}

void GeneratorConfig::validate() const {
  auto bad = [](const std::string& key, const std::string& why) {
    throw ConfigError(fmt::format("generate.{}: {}", key, why));
  };
  if (rct_rows < 0 || observational_rows < 0) bad("rct_rows", "row counts must be >= 0");
  if (rct_rows + observational_rows <= 0) bad("rct_rows", "rct_rows + observational_rows must be > 0");
  if (features < 1) bad("features", fmt::format("is {}; must be >= 1", features));
  if (arms < 2 || arms > kMaxArms)
    bad("arms", fmt::format("is {}; need control plus at least one treatment, at most {} arms", arms, kMaxArms));
  if (!(binary_fraction >= 0 && binary_fraction <= 1)) bad("binary_fraction", "must lie in [0, 1]");
  if (!arm_values.empty()) {
    if (int(arm_values.size()) != arms) bad("arm_values", fmt::format("has {} values for {} arms", arm_values.size(), arms));
    if (arm_values[0] != 0) bad("arm_values", "arm 0 is the control and must cost 0");
    for (int j = 1; j < arms; ++j)
      if (!(arm_values[j] > arm_values[j - 1])) bad("arm_values", "values must increase strictly with the arm index");
  }
  if (!rct_propensity.empty()) {
    if (int(rct_propensity.size()) != arms) bad("rct_propensity", fmt::format("has {} values for {} arms", rct_propensity.size(), arms));
    double sum = 0;
    for (double p : rct_propensity) {
      if (!(p > 0 && p <= 1)) bad("rct_propensity", fmt::format("value {} is outside (0, 1]", p));
      sum += p;
    }
    if (std::abs(sum - 1) > 1e-9) bad("rct_propensity", fmt::format("sums to {}; must sum to 1", sum));
  }
  if (!(non_diminishing_fraction >= 0 && non_diminishing_fraction <= 1)) bad("non_diminishing_fraction", "must lie in [0, 1]");
  if (!(purchase_rate > 0 && purchase_rate <= 1)) bad("purchase_rate", "must lie in (0, 1]");
  if (!(revenue_noise >= 0)) bad("revenue_noise", "must be >= 0");
  if (!(diminishing_rate > 0)) bad("diminishing_rate", "must be > 0");
  if (!(uplift_scale >= 0)) bad("uplift_scale", "must be >= 0");
}

Generator::Generator(GeneratorConfig cfg) : cfg_(std::move(cfg)) {
  cfg_.validate();
  const int F = cfg_.features, M = cfg_.arms;
  if (cfg_.arm_values.empty())
    for (int j = 0; j < M; ++j) cfg_.arm_values.push_back(j);
  if (cfg_.rct_propensity.empty()) cfg_.rct_propensity.assign(M, 1.0 / M);
  n_cont_ = F - static_cast<int>(std::lround(cfg_.binary_fraction * F));
  Rng p(cfg_.seed, kParamStream);
  for (int k = 0; k < F; ++k) {
    load1_.push_back(0.6 * p.normal());
    load2_.push_back(0.6 * p.normal());
    thresh_.push_back(0.5 * p.normal());
  }
  // Index weights, scaled so that each index w.x has unit variance under the feature model.
  auto make = [&](std::vector<double>& w) {
    double var = 0;
    for (int k = 0; k < F; ++k) {
      w.push_back(p.normal());
      double vk = k < n_cont_ ? 1 + load1_[k] * load1_[k] + load2_[k] * load2_[k] : 0.25;
      var += w[k] * w[k] * vk;
    }
    for (auto& v : w) v /= std::sqrt(var);
  };
  make(w_base_);
  make(w_gain_);
  make(w_shape_);
  make(w_redeem_);
  for (int k = 0; k < F; ++k) centre_.push_back(k < n_cont_ ? 0.0 : 0.5);
  const double kap = cfg_.diminishing_rate;
  for (int j = 0; j < M; ++j) {
    h_concave_.push_back((1 - std::exp(-kap * j)) / (1 - std::exp(-kap * (M - 1))));
    double t = double(j) / (M - 1);
    h_convex_.push_back(t * t);
  }
}

Meta Generator::meta() const {
  Meta m;
  m.num_rows = rows();
  m.num_features = cfg_.features;
  m.num_arms = cfg_.arms;
  m.arm_names.push_back("control");
  for (int j = 1; j < cfg_.arms; ++j) m.arm_names.push_back(fmt::format("coupon_{:g}", cfg_.arm_values[j]));
  for (int k = 0; k < cfg_.features; ++k) m.feature_names.push_back(fmt::format(k < n_cont_ ? "x{}" : "b{}", k));
  if (cfg_.rct_rows > 0) m.rct_propensity = cfg_.rct_propensity;
  m.rct_rows = cfg_.rct_rows;
  m.observational_rows = cfg_.observational_rows;
  m.has_propensity = true;
  m.has_truth = true;
  m.origin = fmt::format("dfcl generate seed={} rct_rows={} observational_rows={} features={} arms={}", cfg_.seed,
                         cfg_.rct_rows, cfg_.observational_rows, cfg_.features, cfg_.arms);
  return m;
}

void Generator::fill(int64_t begin, int64_t count, Table& out, int threads) const {
  out.reset(meta(), count);
  constexpr int64_t kBlock = 4096;
  parallel_for((count + kBlock - 1) / kBlock, resolve_threads(threads), [&](int64_t b) {
    for (int64_t j = b * kBlock, e = std::min(count, (b + 1) * kBlock); j < e; ++j) row(begin + j, out, j);
  });
}

void Generator::row(int64_t i, Table& out, int64_t j) const {
  const int F = cfg_.features, M = cfg_.arms;
  Rng r(cfg_.seed, kRowStream, uint64_t(i));
  // Features: two latent traits u drive correlated continuous and binary features.
  const double u1 = r.normal(), u2 = r.normal();
  float* x = &out.features[j * F];
  double s_base = 0, s_gain = 0, s_shape = 0, s_redeem = 0;
  for (int k = 0; k < F; ++k) {
    double z = load1_[k] * u1 + load2_[k] * u2 + r.normal();
    double v = k < n_cont_ ? z : (z > thresh_[k] ? 1.0 : 0.0);
    x[k] = static_cast<float>(v);
    double c = v - centre_[k];
    s_base += w_base_[k] * c, s_gain += w_gain_[k] * c, s_shape += w_shape_[k] * c, s_redeem += w_redeem_[k] * c;
  }
  // Potential outcomes (expected values): revenue m + A g h(j), cost v_j q_j.
  const double m = std::exp(0.5 * s_base);
  const double g = softplus(1.5 * s_gain + 0.5 * std::sin(2 * s_shape)) - cfg_.negative_shift;
  const auto& h = r.uniform() < cfg_.non_diminishing_fraction ? h_convex_ : h_concave_;
  double qv[kMaxArms], rv[kMaxArms];
  for (int a = 0; a < M; ++a) {
    rv[a] = std::max(0.0, m + cfg_.uplift_scale * g * h[a]);
    qv[a] = a == 0 ? 0.0 : sigmoid(cfg_.redemption_base + 0.8 * s_redeem + 0.3 * (a - 1));
    out.true_revenue[j * M + a] = static_cast<float>(rv[a]);
    out.true_cost[j * M + a] = static_cast<float>(cfg_.arm_values[a] * qv[a]);
  }
  // Assignment: RCT rows draw from fixed propensities; observational rows from a softmax policy that
  // gives the pricier arms to users with a high gain and base index (selection bias).
  const bool rct = i < cfg_.rct_rows;
  double u = r.uniform(), acc = 0, prop = 0;
  int t = M - 1;
  if (rct) {
    for (int a = 0; a < M; ++a)
      if (u < (acc += cfg_.rct_propensity[a])) {
        t = a;
        break;
      }
    prop = cfg_.rct_propensity[t];
  } else {
    double lg[kMaxArms] = {}, mx = -1e300, z = 0;
    for (int a = 0; a < M; ++a) {
      double frac = double(a) / (M - 1);
      lg[a] = cfg_.logging_strength * frac * (s_gain + s_base) / std::sqrt(2.0) - 0.5 * frac;
      mx = std::max(mx, lg[a]);
    }
    for (int a = 0; a < M; ++a) z += (lg[a] = std::exp(lg[a] - mx));
    for (int a = 0; a < M; ++a)
      if (u < (acc += lg[a] / z)) {
        t = a;
        break;
      }
    prop = lg[t] / z;
  }
  // Observed outcomes: zero-inflated, log-normal spend with mean rv[t]; cost paid if the coupon is redeemed.
  const double sig = cfg_.revenue_noise;
  double buy = r.uniform(), eps = r.normal(), redeem = r.uniform();
  double y = buy < cfg_.purchase_rate ? rv[t] / cfg_.purchase_rate * std::exp(sig * eps - 0.5 * sig * sig) : 0.0;
  out.treatment[j] = t;
  out.revenue[j] = static_cast<float>(y);
  out.cost[j] = static_cast<float>(redeem < qv[t] ? cfg_.arm_values[t] : 0.0);
  out.propensity[j] = static_cast<float>(std::max(prop, 1e-7));
  out.source[j] = static_cast<uint8_t>(rct ? Source::kRct : Source::kObservational);
  out.row_id[j] = i;
}

}  // namespace dfcl::data
