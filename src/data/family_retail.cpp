// \brief The retail family of the synthetic generator (docs/data.md §2.2): a second data-generating process, built to
// differ from the marketing family where decision-focused learning is said to matter. Revenue is a basket of 5-10
// per user with a heavy-tailed, zero-inflated observed spend; a coupon's cost is paid only when it is redeemed, and
// the users who redeem are those who respond (deal-proneness drives both); the outcomes depend on three latent traits
// through products and saturations, and the features are nonlinear transforms of those traits.
#include <cmath>  // for std::exp, std::log1p, std::sqrt, std::sin, std::tanh, std::lround

#include <fmt/format.h>  // for fmt::format

#include "core/rng.h"        // for Rng
#include "data/generator.h"  // for Family, GeneratorConfig, draw_assignment, finish_row

namespace dfcl::data::detail {
namespace {
constexpr uint64_t kParamStream = 11, kRowStream = 12;
constexpr int kMaxArms = 64, kTraits = 3;
double softplus(double z) { return z > 30 ? z : std::log1p(std::exp(z)); }
double sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

class Retail final : public Family {
 public:
  explicit Retail(const GeneratorConfig& c) : cfg_(c) {
    const int F = cfg_.features;
    n_cont_ = F - static_cast<int>(std::lround(cfg_.binary_fraction * F));
    Rng p(cfg_.seed, kParamStream);
    for (int k = 0; k < F; ++k) {
      for (int t = 0; t < kTraits; ++t) load_.push_back(0.6 * p.normal());
      thresh_.push_back(0.5 * p.normal());
    }
  }

  std::string arm_name(int j) const override {
    return j == 0 ? "no_coupon" : fmt::format("coupon_{:g}", cfg_.arm_values[size_t(j)]);
  }
  // Continuous features cycle through three transforms of their latent index: raw, tanh, exp(z / 2).
  std::string feature_name(int k) const override {
    if (k >= n_cont_) return fmt::format("flag{}", k);
    static const char* kind[3] = {"z", "t", "e"};
    return fmt::format("{}{}", kind[k % 3], k);
  }

  void row(int64_t i, Table& out, int64_t j) const override {
    const int F = cfg_.features, M = cfg_.arms;
    Rng r(cfg_.seed, kRowStream, uint64_t(i));
    // Traits: affluence a, engagement e, deal-proneness d.
    const double a = r.normal(), e = r.normal(), d = r.normal();
    float* x = &out.features[j * F];
    for (int k = 0; k < F; ++k) {
      const double* L = &load_[size_t(k) * kTraits];
      const double z = L[0] * a + L[1] * e + L[2] * d + 0.7 * r.normal();
      double v;
      if (k >= n_cont_)
        v = z > thresh_[size_t(k)] ? 1.0 : 0.0;
      else if (k % 3 == 0)
        v = z;
      else if (k % 3 == 1)
        v = std::tanh(z);
      else
        v = std::exp(0.5 * z);
      x[k] = static_cast<float>(v);
    }
    // Potential outcomes (expected values):
    //   basket     m   = 6 exp(0.35 a - 0.35^2 / 2)                         mean 6, log-normal across users
    //   response   rho = softplus(1.2 d + 0.6 a e) (1 + 0.4 sin(2 e)) - negative_shift      sometimes negative
    //   satiation  s   = 2 exp(0.4 e)                                       coupon value where the lift saturates
    //   revenue    r_j = max(0, m + A sqrt(m) rho (1 - exp(-v_j / s)))      A = uplift_scale
    //   redemption q_j = sigmoid(redemption_base + d + 0.4 e + 0.4 (j - 1)), q_0 = 0
    //   cost       c_j = v_j q_j
    const double m = 6 * std::exp(0.35 * a - 0.35 * 0.35 / 2);
    const double rho = softplus(1.2 * d + 0.6 * a * e) * (1 + 0.4 * std::sin(2 * e)) - cfg_.negative_shift;
    const double sat = 2 * std::exp(0.4 * e);
    double qv[kMaxArms], rv[kMaxArms];
    for (int k = 0; k < M; ++k) {
      const double v = cfg_.arm_values[size_t(k)];
      rv[k] = std::max(0.0, m + cfg_.uplift_scale * std::sqrt(m) * rho * (1 - std::exp(-v / sat)));
      qv[k] = k == 0 ? 0.0 : sigmoid(cfg_.redemption_base + d + 0.4 * e + 0.4 * (k - 1));
      out.true_revenue[j * M + k] = static_cast<float>(rv[k]);
      out.true_cost[j * M + k] = static_cast<float>(v * qv[k]);
    }
    // Assignment: the trial's fixed propensities, or a log policy that gives bigger coupons to affluent, engaged users
    // (whose baskets are large whatever they get: naive per-arm means overstate the big coupons).
    const bool rct = i - cfg_.first_row < cfg_.rct_rows;
    double prop = 0;
    const int t = draw_assignment(cfg_, rct, a + e, r.uniform(), prop);
    // Observed: a purchase with probability purchase_rate, log-normal spend around r_t; the coupon's value is paid
    // when it is redeemed.
    const double sig = cfg_.revenue_noise, pi = cfg_.purchase_rate;
    const double buy = r.uniform(), eps = r.normal(), redeem = r.uniform();
    const double y = buy < pi ? rv[t] / pi * std::exp(sig * eps - 0.5 * sig * sig) : 0.0;
    finish_row(out, j, i, rct, t, y, redeem < qv[t] ? cfg_.arm_values[size_t(t)] : 0.0, prop);
  }

 private:
  GeneratorConfig cfg_;
  int n_cont_ = 0;
  std::vector<double> load_;    // F x 3 loadings of the features on the traits
  std::vector<double> thresh_;  // binary features' thresholds
};
}  // namespace

std::unique_ptr<Family> make_retail_family(const GeneratorConfig& c) { return std::make_unique<Retail>(c); }

}  // namespace dfcl::data::detail
