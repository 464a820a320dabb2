// \brief The marketing family of the synthetic generator (docs/data.md §2): two latent traits behind correlated
// continuous and binary features, log-normal baseline spend, a heterogeneous (sometimes negative) uplift with
// diminishing or convex returns across coupon values, sigmoid redemption, zero-inflated log-normal observed spend.
#include <cmath>  // for std::exp, std::log1p, std::sqrt, std::sin, std::lround

#include <fmt/format.h>  // for fmt::format

#include "core/rng.h"        // for Rng
#include "data/generator.h"  // for Family, GeneratorConfig, draw_assignment, finish_row

namespace dfcl::data::detail {
namespace {
constexpr uint64_t kParamStream = 1, kRowStream = 2;
constexpr int kMaxArms = 64;
double softplus(double z) { return z > 30 ? z : std::log1p(std::exp(z)); }
double sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

class Marketing final : public Family {
 public:
  explicit Marketing(const GeneratorConfig& c) : cfg_(c) {
    const int F = cfg_.features, M = cfg_.arms;
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

  std::string arm_name(int j) const override {
    return j == 0 ? "control" : fmt::format("coupon_{:g}", cfg_.arm_values[size_t(j)]);
  }
  std::string feature_name(int k) const override { return fmt::format(k < n_cont_ ? "x{}" : "b{}", k); }

  void row(int64_t i, Table& out, int64_t j) const override {
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
    // Hidden confounding (logging_confounding > 0 only, so the default rows keep their draws): a shock the features do
    // not carry scales the baseline and steers the logging policy.
    const double zeta = cfg_.logging_confounding > 0 ? r.normal() : 0.0;
    // Potential outcomes (expected values): revenue m + A g h(j), cost v_j q_j.
    const double m = std::exp(0.5 * s_base + (cfg_.logging_confounding > 0 ? 0.5 * zeta - 0.125 : 0.0));
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
    const bool rct = i - cfg_.first_row < cfg_.rct_rows;
    double prop = 0;
    const int t = draw_assignment(cfg_, rct, s_gain + s_base + cfg_.logging_confounding * zeta, r.uniform(), prop);
    // Observed outcomes: zero-inflated, log-normal spend with mean rv[t]; cost paid if the coupon is redeemed.
    const double sig = cfg_.revenue_noise;
    double buy = r.uniform(), eps = r.normal(), redeem = r.uniform();
    double y = buy < cfg_.purchase_rate ? rv[t] / cfg_.purchase_rate * std::exp(sig * eps - 0.5 * sig * sig) : 0.0;
    finish_row(out, j, i, rct, t, y, redeem < qv[t] ? cfg_.arm_values[t] : 0.0, prop);
  }

 private:
  GeneratorConfig cfg_;
  int n_cont_ = 0;
  std::vector<double> load1_, load2_, thresh_;                // feature loadings on the latent pair, binary thresholds
  std::vector<double> w_base_, w_gain_, w_shape_, w_redeem_;  // index weights, pre-normalised
  std::vector<double> centre_;                                // subtracted from binary features in the indices
  std::vector<double> h_concave_, h_convex_;                  // response shapes h(j)
};
}  // namespace

std::unique_ptr<Family> make_marketing_family(const GeneratorConfig& c) { return std::make_unique<Marketing>(c); }

}  // namespace dfcl::data::detail
