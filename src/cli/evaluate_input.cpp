// \brief `dfcl evaluate`'s input: keys and the evaluated rows.
#include "cli/evaluate_input.h"

#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include <algorithm>  // for std::max
#include <limits>     // for std::numeric_limits

#include "core/error.h"            // for ConfigError, DataError
#include "core/log.h"              // for log::info, log::warn
#include "metrics/eom.h"           // for check_budget
#include "metrics/policy_value.h"  // for uniform_policy_value

namespace dfcl::cli {

EvaluateSettings EvaluateSettings::from(const Config& cfg, int threads) {
  EvaluateSettings s;
  s.data = cfg.get_strings("evaluate.data");
  s.generate = cfg.get<bool>("evaluate.generate", false);
  if (s.generate) s.gen = data::GeneratorConfig::from(cfg.sub("generate"));
  if (s.generate == !s.data.empty() && !cfg.dump_mode())
    throw ConfigError(
        "evaluate: give exactly one of evaluate.data=FILE.h5 (or a list of files, read as one dataset) or "
        "evaluate.generate=true (with generate.* keys for the population)");
  s.scores = cfg.get_strings("evaluate.scores");
  if (s.scores.empty())
    throw ConfigError(
        "evaluate.scores is required: oracle, random, true_roi, a model checkpoint from `dfcl train` (.ckpt), a "
        "cluster policy from `dfcl cluster` (.policy), or a "
        "scores file (.h5 with r_hat and c_hat, N x M float32 in the dataset's row order), or a list of them; pass "
        "--set evaluate.scores=... or --set evaluate.scores=[a.ckpt,b.ckpt]");
  for (size_t k = 0; k < s.scores.size(); ++k)
    for (size_t l = 0; l < k; ++l)
      if (s.scores[k] == s.scores[l])
        throw ConfigError(fmt::format("evaluate.scores lists '{}' twice; list each scorer once", s.scores[k]));
  s.budgets = cfg.get<std::vector<double>>("evaluate.budgets", {});
  for (double b : s.budgets) metrics::check_budget(b, "evaluate.budgets");
  s.split_name = cfg.get<std::string>("evaluate.split", "auto");
  if (s.split_name != "auto") s.split = data::parse_split(s.split_name);
  s.split_spec_given = cfg.has("evaluate.split_fractions") || cfg.has("evaluate.split_seed");
  const auto fr = cfg.get<std::vector<double>>("evaluate.split_fractions", {0.8, 0.1});
  if (fr.size() != 2 || fr[0] < 0 || fr[1] < 0 || fr[0] + fr[1] > 1)
    throw ConfigError(
        "evaluate.split_fractions: give [train, validation], each >= 0, summing to <= 1 (test gets the rest)");
  s.split_spec.train = fr[0], s.split_spec.validation = fr[1];
  s.split_spec.seed = static_cast<uint64_t>(cfg.get<int64_t>("evaluate.split_seed", 0));
  s.calibration_name = cfg.get<std::string>("evaluate.budget_calibration", "auto");
  s.calibration = metrics::parse_budget_calibration(s.calibration_name, true, "evaluate.budget_calibration");
  s.calibration_split_name = cfg.get<std::string>("evaluate.calibration_split", "auto");
  if (s.calibration_split_name != "evaluated" && s.calibration_split_name != "auto")
    data::parse_split(s.calibration_split_name);  // checks the name
  const std::string prop = cfg.get<std::string>("evaluate.propensity", "empirical");
  if (prop != "empirical" && prop != "design")
    throw ConfigError(
        fmt::format("evaluate.propensity is '{}'; use empirical (arm shares of the evaluated rows, as the "
                    "papers) or design (the dataset's rct_propensity)",
                    prop));
  s.design_propensity = prop == "design";
  s.quantiles = cfg.get<int>("evaluate.quantiles", 200);
  if (s.quantiles < 1) throw ConfigError(fmt::format("evaluate.quantiles is {}; it must be >= 1", s.quantiles));
  s.boot.replicates = cfg.get<int>("evaluate.bootstrap", 100);
  if (s.boot.replicates == 1 || s.boot.replicates < 0)
    throw ConfigError(
        fmt::format("evaluate.bootstrap is {}; use 0 (no intervals) or at least 2 replicates", s.boot.replicates));
  s.boot.level = cfg.get<double>("evaluate.level", 0.95);
  if (!(s.boot.level > 0 && s.boot.level < 1))
    throw ConfigError(fmt::format("evaluate.level is {}; a confidence level lies in (0, 1), e.g. 0.95", s.boot.level));
  s.boot.seed = static_cast<uint64_t>(cfg.get<int64_t>("evaluate.seed", 0));
  s.boot.threads = threads;
  s.reference = cfg.get<std::string>("evaluate.reference", "");
  s.estimator = train::EstimatorSettings::from(cfg, "evaluate.estimator", metrics::EstimatorKind::kDr, true);
  s.plot = cfg.get<std::string>("evaluate.plot", "cost_curve.svg");
  s.curve_points = cfg.get<int64_t>("evaluate.curve_points", 400);
  if (s.curve_points < 2) throw ConfigError("evaluate.curve_points must be >= 2");
  return s;
}

EvaluatedRows read_rows(data::RowSource& src, const EvaluateSettings& st, data::Split split) {
  EvaluatedRows rows;
  rows.meta = src.meta();
  rows.name = src.name();
  rows.t = data::read_rct_rows(src, st.split_spec, split, std::numeric_limits<int64_t>::max(),
                               "evaluate (evaluate.split, evaluate.calibration_split)");
  return rows;
}

metrics::RctSample make_sample(const EvaluatedRows& rows, bool design) {
  metrics::RctSample s;
  s.n = rows.n();
  s.m = rows.meta.num_arms;
  s.arm = rows.t.treatment.data(), s.revenue = rows.t.revenue.data(), s.cost = rows.t.cost.data();
  if (design) {
    if (static_cast<int>(rows.meta.rct_propensity.size()) != s.m)
      throw DataError(
          fmt::format("{}: propensity missing: the dataset has no rct_propensity attribute for its {} arms; "
                      "set evaluate.propensity=empirical or re-import with the trial's probabilities",
                      rows.name, s.m));
    s.propensity = rows.meta.rct_propensity;
  } else {
    s.propensity = metrics::empirical_propensity(s.arm, s.n, s.m);
    s.empirical = true;
  }
  metrics::validate(s, rows.name);
  return s;
}

std::vector<double> default_budgets(const metrics::RctSample& s) {
  double top = 0;  // the mean cost of the costliest arm
  for (int j = 1; j < s.m; ++j) top = std::max(top, metrics::uniform_policy_value(s, j).cost);
  if (!(top > 0))
    throw DataError(
        "evaluate: no treatment arm has a positive mean cost among the RCT rows, so no default budget grid; "
        "give evaluate.budgets");
  return {0.1 * top, 0.25 * top, 0.5 * top, 0.75 * top};
}

}  // namespace dfcl::cli
