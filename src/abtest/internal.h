// \brief Internal to src/abtest: the estimator registrar, shared inference helpers and the cross-fitted predictor.
#pragma once
#include <cstdint>  // for int64_t, uint64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "abtest/abtest.h"  // for Analysis, Estimate, Estimator, Options

namespace dfcl::abtest {

/// Throws ConfigError naming the `abtest` key when an option is out of range (Options::from and the Analysis call it,
/// so options built in code are checked too).
void check_options(const Options& o);

/// Fills ci_low, ci_high and p_value of `e` from effect and se (normal approximation, level 1 - alpha). A zero SE
/// gives the point as the interval and p = 0 (or 1 for a zero effect).
void fill_inference(Estimate& e, double alpha);

/// Difference in means of `u` (one value per unit of this rank) between the arms, Welch SE; details with the arm
/// counts, means and SDs and the relative effect (delta method). Collective (two all-reduces).
Estimate difference_in_means(const std::vector<double>& u, const Analysis& a, const std::string& method);

/// CUPED with covariate x (one value per unit of this rank): theta = pooled cov(x, outcome) / var(x) over both arms
/// (the OLS slope of the outcome on x), then DIM on outcome - theta (x - mean x) with the Welch SE, theta treated as
/// fixed. Throws DataError naming `covariate` when x has zero variance. Collective.
Estimate control_variate(const std::vector<double>& x, const Analysis& a, const std::string& method,
                         const std::string& covariate);

struct ArmMoments;

/// The balance check of a covariate from its arm moments (`m`'s v side): returns the Welch z of its treatment minus
/// control mean. Throws DataError naming `method`, the covariate, z and both means when |z| > 5 (randomisation makes
/// that impossible for a covariate measured before assignment), and when the covariate is the ML prediction
/// (`from_features`) names the feature that differs most. Collective when it throws.
double check_balance(const ArmMoments& m, const Analysis& a, const std::string& method, const std::string& covariate,
                     bool from_features);

/// Records the balance z in e.details.covariate_balance_z, and a warning when |z| > 3.89 (p < 1e-4).
void warn_if_unbalanced(Estimate& e, double z, const std::string& covariate);

/// The regression design of MLRATE and STATE: z = [1, T, g - gbar] plus T (g - gbar) with the interaction, for the
/// outcome centred at its global mean (centring changes only the intercept and keeps the sums well conditioned).
struct Design {
  double gbar = 0, ybar = 0;
  bool interaction = false;
  int k = 3;
  void row(uint8_t t, double g, double* z) const {
    z[0] = 1, z[1] = t ? 1.0 : 0.0, z[2] = g - gbar;
    if (interaction) z[3] = z[1] * z[2];
  }
  /// The intercept of the uncentred model y = alpha + delta T + gamma g (+ eta T (g - gbar)) from the centred fit.
  double intercept(const std::vector<double>& beta) const { return ybar + beta[0] - beta[2] * gbar; }
  static const char* column(int j) {
    static const char* names[] = {"1", "T", "g", "T (g - gbar)"};
    return names[j];
  }
};
/// Collective: the design for the prediction g and the analysis' outcome (one all-reduce for the global means).
Design make_design(const Analysis& a, const std::vector<double>& g, bool interaction);

/// "where: " for messages ("the A/B data: " when the units have no name).
std::string where_prefix(const Units& u);
/// The message name of feature j ("x3", or the units' feature name).
std::string feature_name(const Units& u, int j);

/// Cross-fitting fold of the unit with global index `global` (0-based): a hash of (seed, global) modulo `folds`, so
/// every rank split of the same units gives every unit the same fold.
int fold_of(uint64_t seed, int64_t global, int folds);

/// Collective: the cross-fitted prediction of `outcome` from this rank's features (units.x, `num_features` per unit,
/// the global count): the options' predictor fitted on the units of the other folds, over every rank, for each fold.
/// Throws DataError when a fold's model cannot be fitted, ConfigError for a predictor it does not know.
std::vector<double> cross_fitted_prediction(const Units& units, int num_features, const std::vector<double>& outcome,
                                            const Options& options, dist::Communicator& comm);

namespace detail {
using EstimatorFactory = std::unique_ptr<Estimator> (*)();
/// Appends a built-in (estimator.cpp calls the registrars in DFCL_BUILTIN_ESTIMATORS order).
void add_estimator(const std::string& name, EstimatorFactory factory);
}  // namespace detail

}  // namespace dfcl::abtest

/// Defines `register_<Class>()`, the registrar of `Class` (in dfcl::abtest, default-constructible) under "name"; use
/// once, at global scope, in the estimator's .cpp, and list X(Class) in DFCL_BUILTIN_ESTIMATORS (estimator.cpp).
#define DFCL_REGISTER_ESTIMATOR(Class, estimator_name)                                                               \
  namespace dfcl::abtest {                                                                                           \
  void register_##Class() {                                                                                          \
    detail::add_estimator(estimator_name, []() -> std::unique_ptr<Estimator> { return std::make_unique<Class>(); }); \
  }                                                                                                                  \
  }
