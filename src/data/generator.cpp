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
constexpr int kMaxArms = 64;
}  // namespace

GeneratorConfig GeneratorConfig::defaults(const std::string& family) {
  GeneratorConfig c;
  c.family = family;
  if (family == "marketing") return c;
  if (family == "retail") {  // family_retail.cpp: four arms, coupons of 1, 3 and 7
    c.arms = 4;
    c.uplift_scale = 1.5;
    c.negative_shift = 0.25;
    c.purchase_rate = 0.5;
    c.revenue_noise = 0.8;
    c.redemption_base = -1.0;
    return c;
  }
  throw ConfigError(fmt::format("generate.family is '{}'; use marketing (the default population) or retail (basket "
                                "revenue of 5-10 per user, redemption-driven coupon costs, nonlinear traits)",
                                family));
}

GeneratorConfig GeneratorConfig::from(const Config& s) {
  GeneratorConfig c = defaults(s.get<std::string>("family", "marketing"));
  for (const char* key : {"diminishing_rate", "non_diminishing_fraction", "logging_confounding"})
    if (c.family != "marketing" && s.has(key))
      throw ConfigError(fmt::format("generate.{} shapes the marketing family's response; family {} does not use it "
                                    "(docs/data.md lists each family's keys)",
                                    key, c.family));
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
  c.logging_confounding = s.get<double>("logging_confounding", c.logging_confounding);
  c.label_noise = s.get<double>("label_noise", c.label_noise);
  c.label_noise_sigma = s.get<double>("label_noise_sigma", c.label_noise_sigma);
  if (!(c.logging_confounding >= 0) || !std::isfinite(c.logging_confounding))
    throw ConfigError(fmt::format("generate.logging_confounding: is {}; use a finite value >= 0 (0 = no hidden "
                                  "confounding)",
                                  c.logging_confounding));
  c.seed = static_cast<uint64_t>(s.get<int64_t>("seed", static_cast<int64_t>(c.seed)));
  c.first_row = s.get<int64_t>("first_row", c.first_row);
  c.validate();
  return c;
}

void GeneratorConfig::validate() const {
  auto bad = [](const std::string& key, const std::string& why) {
    throw ConfigError(fmt::format("generate.{}: {}", key, why));
  };
  if (rct_rows < 0 || observational_rows < 0) bad("rct_rows", "row counts must be >= 0");
  if (first_row < 0) bad("first_row", fmt::format("is {}; must be >= 0 (the population index of the first row)", first_row));
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
  if (!(label_noise >= 0 && label_noise <= 1)) bad("label_noise", "must lie in [0, 1] (the share of corrupted labels)");
  if (!(label_noise_sigma >= 0 && label_noise_sigma <= 10)) bad("label_noise_sigma", "must lie in [0, 10]");
  if (!(diminishing_rate > 0)) bad("diminishing_rate", "must be > 0");
  if (!(uplift_scale >= 0)) bad("uplift_scale", "must be >= 0");
}

Generator::Generator(GeneratorConfig cfg) : cfg_(std::move(cfg)) {
  cfg_.validate();
  const int M = cfg_.arms;
  if (cfg_.arm_values.empty())
    for (int j = 0; j < M; ++j) cfg_.arm_values.push_back(cfg_.family == "retail" ? std::ldexp(1.0, j) - 1 : j);
  if (cfg_.rct_propensity.empty()) cfg_.rct_propensity.assign(M, 1.0 / M);
  family_ = cfg_.family == "retail" ? detail::make_retail_family(cfg_) : detail::make_marketing_family(cfg_);
}

Generator::~Generator() = default;
Generator::Generator(Generator&&) noexcept = default;

Meta Generator::meta() const {
  Meta m;
  m.num_rows = rows();
  m.num_features = cfg_.features;
  m.num_arms = cfg_.arms;
  for (int j = 0; j < cfg_.arms; ++j) m.arm_names.push_back(family_->arm_name(j));
  for (int k = 0; k < cfg_.features; ++k) m.feature_names.push_back(family_->feature_name(k));
  if (cfg_.rct_rows > 0) m.rct_propensity = cfg_.rct_propensity;
  m.rct_rows = cfg_.rct_rows;
  m.observational_rows = cfg_.observational_rows;
  m.has_propensity = true;
  m.has_truth = true;
  m.origin = fmt::format("dfcl generate family={} seed={} rct_rows={} observational_rows={} features={} arms={}{}",
                         cfg_.family, cfg_.seed, cfg_.rct_rows, cfg_.observational_rows, cfg_.features, cfg_.arms,
                         cfg_.first_row ? fmt::format(" first_row={}", cfg_.first_row) : std::string());
  return m;
}

namespace {
constexpr uint64_t kLabelNoiseStream = 0x6c6e6f697365ull;  // "lnoise"
}  // namespace

void Generator::fill(int64_t begin, int64_t count, Table& out, int threads) const {
  out.reset(meta(), count);
  constexpr int64_t kBlock = 4096;
  parallel_for((count + kBlock - 1) / kBlock, resolve_threads(threads), [&](int64_t b) {
    for (int64_t j = b * kBlock, e = std::min(count, (b + 1) * kBlock); j < e; ++j) {
      const int64_t i = cfg_.first_row + begin + j;
      family_->row(i, out, j);
      if (cfg_.label_noise > 0) {  // its own stream: the rows' other draws stay as they were
        Rng r(cfg_.seed, kLabelNoiseStream, uint64_t(i));
        const double s = cfg_.label_noise_sigma;
        if (r.uniform() < cfg_.label_noise) out.revenue[size_t(j)] *= float(std::exp(s * r.normal() - 0.5 * s * s));
      }
    }
  });
}

namespace detail {

int draw_assignment(const GeneratorConfig& c, bool rct, double pair, double u, double& prop) {
  const int m = c.arms;
  double w[kMaxArms] = {}, acc = 0;
  if (rct) {
    for (int a = 0; a < m; ++a) w[a] = c.rct_propensity[size_t(a)];
  } else {
    double mx = -1e300, z = 0;
    for (int a = 0; a < m; ++a) {
      const double frac = double(a) / (m - 1);
      w[a] = c.logging_strength * frac * pair / std::sqrt(2.0) - 0.5 * frac;
      mx = std::max(mx, w[a]);
    }
    for (int a = 0; a < m; ++a) z += (w[a] = std::exp(w[a] - mx));
    for (int a = 0; a < m; ++a) w[a] /= z;
  }
  int t = m - 1;
  for (int a = 0; a < m; ++a)
    if (u < (acc += w[a])) {
      t = a;
      break;
    }
  prop = w[t];
  return t;
}

void finish_row(Table& out, int64_t j, int64_t i, bool rct, int arm, double revenue, double cost, double prop) {
  out.treatment[size_t(j)] = arm;
  out.revenue[size_t(j)] = static_cast<float>(revenue);
  out.cost[size_t(j)] = static_cast<float>(cost);
  out.propensity[size_t(j)] = static_cast<float>(std::max(prop, 1e-7));
  out.source[size_t(j)] = static_cast<uint8_t>(rct ? Source::kRct : Source::kObservational);
  out.row_id[size_t(j)] = i;
}

}  // namespace detail
}  // namespace dfcl::data
