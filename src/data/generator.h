// \brief Synthetic marketing populations with known potential outcomes (docs/data.md, "The synthetic generator").
//
// Every row is a pure function of (seed, row index): any thread count, chunk size or shard gives the
// same file. Rows [0, rct_rows) are a randomised trial; the rest follow a feature-dependent logging policy.
// Two families of data-generating processes (`family`): marketing (family_marketing.cpp, the default) and retail
// (family_retail.cpp: basket revenue of 5-10 per user, redemption-driven coupon costs, nonlinear latent traits).
#pragma once
#include <cstdint>  // for int64_t, uint64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "data/schema.h"  // for Meta, Table

namespace dfcl {
class Config;
}

namespace dfcl::data {

struct GeneratorConfig {
  std::string family = "marketing";  // marketing | retail: the data-generating process
  int64_t rct_rows = 200000;
  int64_t observational_rows = 800000;
  int features = 32;
  double binary_fraction = 0.25;       // share of features that are 0/1
  int arms = 5;                        // arm 0 = control
  std::vector<double> arm_values;      // coupon face value per arm (default j), increasing
  std::vector<double> rct_propensity;  // default uniform
  double uplift_scale = 0.5;           // A: scale of the revenue uplift
  double diminishing_rate = 1.0;       // kappa: curvature of the concave response
  double non_diminishing_fraction = 0.1;  // phi: users whose response is convex instead
  double negative_shift = 0.2;         // delta: how far g is shifted down (some users respond negatively)
  double purchase_rate = 0.3;          // pi: chance of any purchase (zero inflation)
  double revenue_noise = 1.0;          // sigma of the log-normal spend multiplier (heavy tail)
  double redemption_base = -0.5;       // beta_0 of the coupon redemption probability
  double logging_strength = 1.5;       // gamma: selection bias of the observational policy
  // zeta: hidden confounding of the log (marketing family): an unobserved per-user shock z ~ N(0, 1) scales the baseline
  // revenue by exp(0.5 z - 0.125) and enters the logging policy's index as zeta z, so the log's arm-wise means given x
  // are biased (not only its covariate mix). 0 (the default) draws nothing extra: the rows stay as they were.
  double logging_confounding = 0;
  // Label noise (both families): a share `label_noise` of rows get a corrupted revenue label, their observed revenue
  // times exp(s z - s^2 / 2), z ~ N(0, 1), s = label_noise_sigma: unbiased in mean, much heavier tailed. The true tables
  // are untouched, so oracle regret still measures decisions against the truth. 0 (the default) draws nothing.
  double label_noise = 0;
  double label_noise_sigma = 2.5;
  uint64_t seed = 42;
  // The population index of the file's first row: rows first_row, first_row + 1, ... are the same population's users
  // after the first first_row (the seed fixes the population; a row is a function of (seed, index)). Fresh users for
  // a second trial or a deployment population that shares no user with a first file generated from row 0.
  int64_t first_row = 0;

  /// Reads the `generate` section (keys as above; `family` first, whose defaults the other keys override) and checks
  /// every value. A key the family does not use is a ConfigError.
  static GeneratorConfig from(const Config& section);
  /// The defaults of a family (marketing: the values above; retail: docs/data.md).
  static GeneratorConfig defaults(const std::string& family);
  void validate() const;
};

namespace detail {
/// One data-generating process: names, and row i of the population (features, true tables, arm, outcomes).
class Family {
 public:
  virtual ~Family() = default;
  virtual std::string arm_name(int j) const = 0;
  virtual std::string feature_name(int k) const = 0;
  /// Writes population row i (the file's row i - first_row) into row j of `out` (every column of a generated Table).
  virtual void row(int64_t i, Table& out, int64_t j) const = 0;
};
std::unique_ptr<Family> make_marketing_family(const GeneratorConfig& c);  // family_marketing.cpp
std::unique_ptr<Family> make_retail_family(const GeneratorConfig& c);     // family_retail.cpp

/// What every family shares: the arm of a row and the row's bookkeeping. A trial row draws from rct_propensity; a log
/// row from the logging policy P(t = j) proportional to exp(logging_strength (j/(M-1)) pair / sqrt(2) - 0.5 j/(M-1)),
/// which gives the pricier arms to users whose `pair` (the sum of two standardised traits or indices) is high. `u` is
/// a uniform draw; returns the arm and writes its probability to `prop`.
int draw_assignment(const GeneratorConfig& c, bool rct, double pair, double u, double& prop);
void finish_row(Table& out, int64_t j, int64_t i, bool rct, int arm, double revenue, double cost, double prop);
}  // namespace detail

class Generator {
 public:
  explicit Generator(GeneratorConfig cfg);
  ~Generator();
  Generator(Generator&&) noexcept;
  const GeneratorConfig& config() const { return cfg_; }
  /// The dataset's Meta (names, propensities; has_propensity and has_truth set).
  Meta meta() const;
  int64_t rows() const { return cfg_.rct_rows + cfg_.observational_rows; }
  /// Fills rows [begin, begin + count) on `threads` threads (0 = all cores).
  void fill(int64_t begin, int64_t count, Table& out, int threads = 0) const;

 private:
  GeneratorConfig cfg_;
  std::unique_ptr<detail::Family> family_;
};

}  // namespace dfcl::data
