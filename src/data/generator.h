// \brief Synthetic marketing population with known potential outcomes (docs/data.md, "Generator").
//
// Every row is a pure function of (seed, row index): any thread count, chunk size or shard gives the
// same file. Rows [0, rct_rows) are a randomised trial; the rest follow a feature-dependent logging policy.
#pragma once
#include <cstdint>  // for int64_t, uint64_t
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "data/schema.h"  // for Meta, Table

namespace dfcl {
class Config;
}

namespace dfcl::data {

struct GeneratorConfig {
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
  uint64_t seed = 42;

  /// Reads the `generate` section (keys as above) and checks every value.
  static GeneratorConfig from(const Config& section);
  void validate() const;
};

class Generator {
 public:
  explicit Generator(GeneratorConfig cfg);
  const GeneratorConfig& config() const { return cfg_; }
  /// The dataset's Meta (names, propensities; has_propensity and has_truth set).
  Meta meta() const;
  int64_t rows() const { return cfg_.rct_rows + cfg_.observational_rows; }
  /// Fills rows [begin, begin + count) on `threads` threads (0 = all cores).
  void fill(int64_t begin, int64_t count, Table& out, int threads = 0) const;

 private:
  void row(int64_t i, Table& out, int64_t j) const;
  GeneratorConfig cfg_;
  int n_cont_ = 0;
  std::vector<double> load1_, load2_, thresh_;        // feature loadings on the latent pair, binary thresholds
  std::vector<double> w_base_, w_gain_, w_shape_, w_redeem_;  // index weights, pre-normalised
  std::vector<double> centre_;                        // subtracted from binary features in the indices
  std::vector<double> h_concave_, h_convex_;          // response shapes h(j)
};

}  // namespace dfcl::data
