// \brief A/B-test effect estimation: DIM, CUPED, CUPAC, MLRATE and STATE for count and ratio metrics
// (docs/abtest.md; spec ../shared/specs/methods-state-cluster.md Parts A and C).
//
// One comparison = one treatment arm against one control arm. Units hold float64 columns; every estimator works from
// additive sums that are reduced through a dist::Communicator, so the same code analyses a 100M-row experiment
// sharded over ranks without gathering rows (each rank passes its own units). Adding an estimator is one file plus
// one line in DFCL_BUILTIN_ESTIMATORS (estimator.cpp).
#pragma once
#include <nlohmann/json.hpp>  // for nlohmann::json

#include <cmath>    // for NAN
#include <cstdint>  // for int64_t, uint64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace dfcl {
class Config;
}
namespace dfcl::dist {
class Communicator;
}

namespace dfcl::abtest {

/// This rank's units of one comparison. For a ratio metric (e.g. GMV per order) `d` holds the denominator and `y`
/// the numerator; for a count metric `d` is empty.
struct Units {
  std::vector<double> y;     // metric, or the ratio's numerator
  std::vector<double> d;     // the ratio's denominator (empty: count metric)
  std::vector<uint8_t> t;    // 1 = treatment arm, 0 = control arm
  std::vector<double> pre;   // pre-period covariate for CUPED (empty: CUPED unavailable)
  std::vector<double> x;     // features for the ML covariate (CUPAC, MLRATE, STATE), row-major n x num_features
  int num_features = 0;
  int64_t offset = 0;        // global index of this rank's first unit (cross-fitting folds hash it)
  std::string where;         // the data's name for messages ("hillstrom.csv, Mens E-Mail vs No E-Mail")
  // Column names for messages (the defaults name the struct's fields; feature j defaults to "x<j+1>").
  std::string y_name = "y", d_name = "d", t_name = "t", pre_name = "pre";
  std::vector<std::string> feature_names;
  int64_t size() const { return int64_t(y.size()); }
  bool ratio() const { return !d.empty(); }
};

/// Options of every estimator (the `abtest` config section; docs/abtest.md lists the keys).
struct Options {
  double alpha = 0.05;          // CI level 1 - alpha; two-sided p-values
  // ML covariate (CUPAC, MLRATE, STATE): K-fold cross-fitting, folds by a hash of (seed, global unit index)
  int folds = 2;
  uint64_t seed = 0;
  std::string predictor = "ridge2";  // ridge (linear features) | ridge2 (plus squares and pairwise products)
  double ridge_lambda = 1.0;         // L2 penalty on standardised features
  // STATE
  bool state_estimate_nu = true;  // false: nu fixed at state_nu
  double state_nu = 10;           // the fixed nu, or the EM's starting value
  double state_nu_min = 2.01, state_nu_max = 1000;
  int state_max_iter = 500;
  double state_tol = 1e-8;        // relative change of the observed log-likelihood (and max |d beta| / scale)
  bool state_interaction = false; // add T (g - gbar) as in MLRATE
  std::string state_se = "sandwich";  // sandwich | model
  bool state_px = true;               // sigma2 M-step divides by sum w (PX-EM; same fixed point), false: by N
  bool state_squarem = true;          // SQUAREM extrapolation every two EM steps (same fixed point; monotone)
  /// Reads the `abtest` section's estimator keys; ConfigError naming the key.
  static Options from(const Config& cfg);
};

/// One estimator's answer.
struct Estimate {
  std::string method;  // dim, cuped, cupac, mlrate, state
  double effect = NAN, se = NAN, ci_low = NAN, ci_high = NAN, p_value = NAN;
  double variance_reduction = NAN;  // 1 - se^2 / se_dim^2 (filled by analyse())
  std::string estimand;             // "difference in means" or "t-model location shift" (STATE)
  nlohmann::json details = nlohmann::json::object();  // theta, gamma, nu, sigma2, iterations, model/sandwich SEs...
  std::vector<std::string> warnings;                  // e.g. STATE vs DIM disagree beyond their CIs
  nlohmann::json to_json() const;
};

/// A ratio metric's linearisation, per arm g (0 = control, 1 = treatment): R_g = sum_g Y / sum_g D, Dbar_g =
/// sum_g D / n_g (global sums). An estimator that is not linear in W (STATE) needs them for its SE: W depends on
/// R_g and Dbar_g, which are estimated too.
struct Linearisation {
  double r[2] = {0, 0}, dbar[2] = {0, 0};
};

/// Prepared once per comparison and shared by the estimators: global counts, the linearised metric for ratio
/// metrics, and the cross-fitted ML prediction g (computed on first use).
class Analysis {
 public:
  /// Validates the units on every rank (NaN/inf, a zero denominator, an empty arm, a single arm, lengths) and throws
  /// DataError naming `units.where`, the column, the row (global 1-based: offset + i + 1) and the fix; every rank
  /// throws the same error (a collective: every rank constructs its Analysis, with the same options; ConfigError for
  /// options out of range, naming the abtest key). Ratio metrics are linearised here per arm g (the group-specific
  /// delta-method linearisation, spec A.8 and C.5):
  ///   W_i = R_g + (Y_i - R_g D_i) / Dbar_g,   R_g = sum_g Y / sum_g D,   Dbar_g = sum_g D / n_g,
  /// so that DIM on W is exactly R_t - R_c and its Welch SE is exactly the delta-method SE (docs/abtest.md).
  /// `units` must outlive the Analysis (it is not copied).
  Analysis(const Units& units, const Options& options, dist::Communicator& comm);
  /// A temporary would dangle: keep the units in a variable.
  Analysis(Units&& units, const Options& options, dist::Communicator& comm) = delete;
  ~Analysis();
  /// The per-unit outcome the estimators regress: y, or the linearised W for a ratio metric.
  const std::vector<double>& outcome() const;
  /// The cross-fitted prediction of outcome() from the features (same length); throws DataError without features.
  const std::vector<double>& prediction();
  const Units& units() const;
  const Options& options() const;
  dist::Communicator& comm() const;
  int64_t global_n(int arm) const;  // units per arm over all ranks
  bool ratio() const;               // a ratio metric (on any rank)
  const Linearisation& linearisation() const;  // R_g and Dbar_g (zeros when not ratio())
  bool has_pre() const;             // a pre-period covariate (on any rank)
  int num_features() const;         // features per unit (the same on every rank with units)
 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Estimator {
 public:
  virtual ~Estimator() = default;
  virtual std::string name() const = 0;
  /// Whether the data allow it (e.g. CUPED needs `pre`, CUPAC/MLRATE/STATE need features).
  virtual bool applicable(const Analysis& a) const = 0;
  virtual Estimate estimate(Analysis& a) const = 0;
};

std::unique_ptr<Estimator> make_estimator(const std::string& name);
std::vector<std::string> estimator_names();  // dim, cuped, cupac, mlrate, state

/// Runs `methods` (all applicable when empty) and fills each estimate's variance reduction against DIM. Bad units
/// throw DataError (Analysis); an estimator that the data cannot support (a constant prediction g, a singular design)
/// returns NaN numbers with the reason in its warnings ("not computed: ...") and details.error, so the other estimates
/// stand. Collective: every rank calls it with the same options and methods.
std::vector<Estimate> analyse(const Units& units, const Options& options, dist::Communicator& comm,
                              const std::vector<std::string>& methods = {});

}  // namespace dfcl::abtest
