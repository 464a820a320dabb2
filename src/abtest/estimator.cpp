// \brief The estimator registry, analyse(), Estimate::to_json, Options::from and the normal-theory inference helper.
//
// Adding an estimator = one file (a class deriving from Estimator, then DFCL_REGISTER_ESTIMATOR(Class, "name") in
// its .cpp) plus one line X(Class) in DFCL_BUILTIN_ESTIMATORS below. The explicit list (rather than static
// registrars) keeps registration working when dfcl_abtest is a static library, and fixes the order of
// estimator_names() (the order analyse() runs and reports them in).
#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include <algorithm>  // for std::find
#include <cmath>      // for std::isfinite, std::sqrt

#include "abtest/abtest.h"
#include "abtest/internal.h"  // for fill_inference, detail::add_estimator
#include "core/special.h"   // for normal_quantile, two_sided_p
#include "core/config.h"      // for Config
#include "core/error.h"       // for ConfigError, DataError
#include "core/registry.h"    // for core::Registry

/// The built-in estimators, one X(Class) each, in the order estimator_names() lists them.
#define DFCL_BUILTIN_ESTIMATORS(X) \
  X(Dim)                           \
  X(Cuped)                         \
  X(Cupac)                         \
  X(Mlrate)                        \
  X(State)

namespace dfcl::abtest {
#define DFCL_DECLARE_REGISTRAR(Class) void register_##Class();
DFCL_BUILTIN_ESTIMATORS(DFCL_DECLARE_REGISTRAR)
#undef DFCL_DECLARE_REGISTRAR

namespace {
void register_builtins() {
#define DFCL_CALL_REGISTRAR(Class) register_##Class();
  DFCL_BUILTIN_ESTIMATORS(DFCL_CALL_REGISTRAR)
#undef DFCL_CALL_REGISTRAR
}
core::Registry<detail::EstimatorFactory>& registry() {
  static core::Registry<detail::EstimatorFactory> r("estimator", register_builtins);
  return r;
}
}  // namespace

void detail::add_estimator(const std::string& name, EstimatorFactory factory) { registry().add(name, factory); }

std::vector<std::string> estimator_names() { return registry().names(); }

std::unique_ptr<Estimator> make_estimator(const std::string& name) {
  const detail::EstimatorFactory factory = registry().find(name);
  if (!factory)
    throw ConfigError(
        fmt::format("unknown A/B estimator '{}'; known estimators: {}", name, fmt::join(estimator_names(), ", ")));
  return factory();
}

void fill_inference(Estimate& e, double alpha) {
  const double q = normal_quantile(1 - alpha / 2);
  if (e.se > 0) {
    e.ci_low = e.effect - q * e.se, e.ci_high = e.effect + q * e.se;
    e.p_value = two_sided_p(e.effect / e.se);
  } else if (e.se == 0) {
    e.ci_low = e.ci_high = e.effect;
    e.p_value = e.effect == 0 ? 1.0 : 0.0;
  }
}

nlohmann::json Estimate::to_json() const {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json j;
  j["method"] = method;
  j["estimand"] = estimand;
  j["effect"] = num(effect);
  j["se"] = num(se);
  j["ci_low"] = num(ci_low);
  j["ci_high"] = num(ci_high);
  j["p_value"] = num(p_value);
  j["variance_reduction"] = num(variance_reduction);
  j["details"] = details;
  j["warnings"] = warnings;
  return j;
}

void check_options(const Options& o) {
  if (!(o.alpha > 0 && o.alpha < 1))
    throw ConfigError(fmt::format("abtest.alpha is {}; give a level in (0, 1), e.g. 0.05 for 95% intervals", o.alpha));
  if (o.folds < 2 || o.folds > 100)
    throw ConfigError(fmt::format("abtest.folds is {}; cross-fitting needs 2..100 folds (2 or 5 are usual)", o.folds));
  if (o.predictor != "ridge" && o.predictor != "ridge2")
    throw ConfigError(
        fmt::format("abtest.predictor is '{}'; use ridge (linear in the standardised features) or "
                    "ridge2 (plus their squares and pairwise products)",
                    o.predictor));
  if (!(o.ridge_lambda >= 0 && std::isfinite(o.ridge_lambda)))
    throw ConfigError(
        fmt::format("abtest.ridge_lambda is {}; give a penalty >= 0 (1 is a mild default)", o.ridge_lambda));
  if (!(o.state_nu_min > 0 && std::isfinite(o.state_nu_min)))
    throw ConfigError(
        fmt::format("abtest.state.nu_min is {}; give degrees of freedom > 0 (2.01 keeps a finite "
                    "residual variance)",
                    o.state_nu_min));
  if (!(o.state_nu_max > o.state_nu_min && std::isfinite(o.state_nu_max)))
    throw ConfigError(
        fmt::format("abtest.state.nu_max is {}; give a finite value above abtest.state.nu_min ({}), e.g. "
                    "1000 (about Gaussian)",
                    o.state_nu_max, o.state_nu_min));
  if (!(o.state_nu > 0 && std::isfinite(o.state_nu)))
    throw ConfigError(
        fmt::format("abtest.state.nu is {}; give degrees of freedom > 0 (the fixed value, or the "
                    "EM's start when abtest.state.estimate_nu is true; 10 is usual)",
                    o.state_nu));
  if (o.state_estimate_nu && (o.state_nu < o.state_nu_min || o.state_nu > o.state_nu_max))
    throw ConfigError(
        fmt::format("abtest.state.nu is {}, the EM's starting value; it must lie in "
                    "[abtest.state.nu_min, abtest.state.nu_max] = [{}, {}]",
                    o.state_nu, o.state_nu_min, o.state_nu_max));
  if (o.state_max_iter < 1)
    throw ConfigError(fmt::format("abtest.state.max_iter is {}; give at least 1 (500 is usual)", o.state_max_iter));
  if (!(o.state_tol > 0 && o.state_tol < 1))
    throw ConfigError(
        fmt::format("abtest.state.tol is {}; give a relative tolerance in (0, 1), e.g. 1e-8", o.state_tol));
  if (o.state_se != "sandwich" && o.state_se != "model")
    throw ConfigError(
        fmt::format("abtest.state.se is '{}'; use sandwich (robust, the default) or model (the "
                    "t-model's expected information)",
                    o.state_se));
}

Options Options::from(const Config& cfg) {
  Options o;
  o.alpha = cfg.get<double>("abtest.alpha", o.alpha);
  o.folds = cfg.get<int>("abtest.folds", o.folds);
  const int64_t seed = cfg.get<int64_t>("abtest.seed", int64_t(o.seed));
  if (seed < 0) throw ConfigError(fmt::format("abtest.seed is {}; give a non-negative integer", seed));
  o.seed = uint64_t(seed);
  o.predictor = cfg.get<std::string>("abtest.predictor", o.predictor);
  o.ridge_lambda = cfg.get<double>("abtest.ridge_lambda", o.ridge_lambda);
  o.state_estimate_nu = cfg.get<bool>("abtest.state.estimate_nu", o.state_estimate_nu);
  o.state_nu = cfg.get<double>("abtest.state.nu", o.state_nu);
  o.state_nu_min = cfg.get<double>("abtest.state.nu_min", o.state_nu_min);
  o.state_nu_max = cfg.get<double>("abtest.state.nu_max", o.state_nu_max);
  o.state_max_iter = cfg.get<int>("abtest.state.max_iter", o.state_max_iter);
  o.state_tol = cfg.get<double>("abtest.state.tol", o.state_tol);
  o.state_interaction = cfg.get<bool>("abtest.state.interaction", o.state_interaction);
  o.state_se = cfg.get<std::string>("abtest.state.se", o.state_se);
  o.state_px = cfg.get<bool>("abtest.state.px", o.state_px);
  o.state_squarem = cfg.get<bool>("abtest.state.squarem", o.state_squarem);
  check_options(o);
  return o;
}

std::vector<Estimate> analyse(const Units& units, const Options& options, dist::Communicator& comm,
                              const std::vector<std::string>& methods) {
  const std::vector<std::string> known = estimator_names();
  for (const auto& m : methods)
    if (std::find(known.begin(), known.end(), m) == known.end())
      throw ConfigError(fmt::format("unknown A/B estimator '{}'; known estimators: {}", m, fmt::join(known, ", ")));
  Analysis a(units, options, comm);
  std::vector<std::string> run;
  for (const auto& name : known) {  // the registry's order; explicit methods must be applicable
    const bool asked = std::find(methods.begin(), methods.end(), name) != methods.end();
    if (!methods.empty() && !asked) continue;
    const auto est = make_estimator(name);
    if (est->applicable(a)) {
      run.push_back(name);
    } else if (asked) {
      throw DataError(fmt::format("{}the estimator '{}' does not apply to these units: {}", where_prefix(units), name,
                                  name == "cuped" ? "it needs a pre-period covariate column"
                                                  : "it needs feature columns for its ML covariate"));
    }
  }
  // DIM is the reference of every variance reduction: run it even when not asked for.
  const Estimate dim = make_estimator("dim")->estimate(a);
  std::vector<Estimate> out;
  for (const auto& name : run) {
    Estimate e;
    if (name == "dim") {
      e = dim;
    } else {
      try {  // a fit the data cannot support (a constant g, a singular design) leaves the other estimates standing
        e = make_estimator(name)->estimate(a);
      } catch (const DataError& x) {  // decided from all-reduced sums: every rank is here together
        e.method = name;
        e.estimand = name == "state" ? "t-model location shift" : "difference in means";
        e.details["error"] = x.what();
        e.warnings.push_back(fmt::format("not computed: {}", x.what()));
      }
    }
    if (e.details.find("error") == e.details.end() && !(std::isfinite(e.effect) && std::isfinite(e.se)))
      e.warnings.push_back(fmt::format(
          "the effect ({}) or its SE ({}) is not a finite number, so there is no CI or p-value: the metric's scale or "
          "a degenerate fit overflowed double precision; rescale the metric, or report another estimator",
          e.effect, e.se));
    if (std::isfinite(e.se) && dim.se > 0) e.variance_reduction = 1 - e.se * e.se / (dim.se * dim.se);
    if (name == "state" && std::isfinite(e.ci_low) && (e.ci_low > dim.ci_high || e.ci_high < dim.ci_low))
      e.warnings.push_back(fmt::format(
          "STATE and DIM disagree beyond their {:g}% intervals (STATE {:.6g} [{:.6g}, {:.6g}], DIM {:.6g} [{:.6g}, "
          "{:.6g}]): STATE estimates the t-model location shift, which differs from the mean effect when the "
          "residuals are asymmetric and heavy-tailed or the effect is concentrated in a few units; report DIM, "
          "CUPED or MLRATE for the mean effect",
          100 * (1 - options.alpha), e.effect, e.ci_low, e.ci_high, dim.effect, dim.ci_low, dim.ci_high));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace dfcl::abtest
