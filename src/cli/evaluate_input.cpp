// \brief `dfcl evaluate`'s input: keys, checkpoints, the default split, the evaluated rows, the scorers.
#include "cli/evaluate_input.h"

#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include <algorithm>  // for std::max
#include <limits>     // for std::numeric_limits

#include "core/error.h"            // for ConfigError, DataError
#include "core/log.h"              // for log::info, log::warn
#include "metrics/eom.h"           // for check_budget
#include "metrics/policy_value.h"  // for uniform_policy_value
#include "cluster/policy.h"       // for ClusterPolicy, is_policy_file
#include "metrics/score_file.h"    // for read_score_file
#include "metrics/scorers.h"       // for random_scores, true_roi_scores

namespace dfcl::cli {
namespace {
bool is_checkpoint(const std::string& s) { return s.size() > 5 && s.compare(s.size() - 5, 5, ".ckpt") == 0; }
}  // namespace

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
  s.calibration_split_name = cfg.get<std::string>("evaluate.calibration_split", "evaluated");
  if (s.calibration_split_name != "evaluated") data::parse_split(s.calibration_split_name);  // checks the name
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
  s.reference = cfg.get<std::string>("evaluate.reference", "random");
  s.plot = cfg.get<std::string>("evaluate.plot", "cost_curve.svg");
  s.curve_points = cfg.get<int64_t>("evaluate.curve_points", 400);
  if (s.curve_points < 2) throw ConfigError("evaluate.curve_points must be >= 2");
  return s;
}

// Checkpoints are loaded once, before any rows are read: what they were trained on decides the default split.
using Models = std::vector<std::pair<std::string, std::shared_ptr<const train::TrainedModel>>>;

Models load_models(const EvaluateSettings& st, Policies* policies) {
  Models out;
  for (const auto& name : st.scores)
    if (is_checkpoint(name)) {
      out.emplace_back(name, std::make_shared<const train::TrainedModel>(train::load_trained_model(name)));
    } else if (cluster::is_policy_file(name)) {
      auto p = std::make_shared<const cluster::ClusterPolicy>(cluster::ClusterPolicy::load(name));
      out.emplace_back(name, p->teacher);
      if (policies) policies->emplace_back(name, p);
    }
  return out;
}

// The split to evaluate and its fractions. With split: auto, a dataset one of the checkpoints trained on is read in its
// test split (the checkpoint's fractions and seed), and any other dataset whole: a file the models never saw.
void resolve_split(EvaluateSettings& st, const Models& models) {
  const train::TrainedModel* trained = nullptr;  // a checkpoint that trained on one of the evaluated files
  for (const auto& [name, m] : models)
    if (!st.generate && data::shares_file(st.data, m->train_files)) {
      if (trained && (trained->split.train != m->split.train || trained->split.validation != m->split.validation ||
                      trained->split.seed != m->split.seed))
        throw ConfigError(
            fmt::format("{} and {} trained on {} with different train.split_fractions / split_seed, so "
                        "no test split is held out from both; evaluate them separately",
                        trained->origin, name, fmt::join(st.data, ", ")));
      trained = m.get();
    }
  if (trained && !st.split_spec_given) {
    st.split_spec = trained->split;
  } else if (trained &&
             (trained->split.train != st.split_spec.train || trained->split.validation != st.split_spec.validation ||
              trained->split.seed != st.split_spec.seed)) {
    log::warn(
        "evaluate.split_fractions / split_seed ({}, {}; seed {}) differ from those {} was trained with ({}, {}; "
        "seed {}): the evaluated rows may include its training rows. Leave them out to use the checkpoint's",
        st.split_spec.train, st.split_spec.validation, st.split_spec.seed, trained->origin, trained->split.train,
        trained->split.validation, trained->split.seed);
  }
  if (st.split_name == "auto") {
    st.split = trained ? data::Split::kTest : data::Split::kAll;
    log::info("evaluate.split = auto: {}",
              trained ? fmt::format("the test split ({:.0f}% of the rows), because {} "
                                    "trained on this data",
                                    100 * st.split_spec.fraction(data::Split::kTest), trained->origin)
                      : std::string("all rows: no checkpoint scored here trained on them"));
  } else if (!trained && st.split != data::Split::kAll && !models.empty()) {
    log::warn(
        "evaluate.split = {} scores only {:.0f}% of the rows of {}, although no checkpoint here trained on them; "
        "evaluate.split=auto (or all) scores every row",
        st.split_name, 100 * st.split_spec.fraction(st.split), fmt::join(st.data, ", "));
  }
  if (trained && (st.calibration_split_name == "all" || st.calibration_split_name == "train"))
    log::warn("evaluate.calibration_split = {} includes the rows {} trained on: the IPW spend of a model's decisions "
              "on rows whose outcomes it fit is biased. Calibrate on held-out rows (evaluated, the default, or held_out)",
              st.calibration_split_name, trained->origin);
  if (trained && st.split == data::Split::kTrain)
    log::warn("evaluate.split = train: these are {}'s training rows; its numbers here are optimistic", trained->origin);
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

Scored Scorer::score(const EvaluatedRows& rows, const EvaluateSettings& st, int threads) const {
  Scored s;
  const int64_t n = rows.n();
  const int m = rows.meta.num_arms;
  auto need_truth = [&] {
    if (!rows.has_truth())
      throw DataError(
          fmt::format("evaluate.scores = {} needs the true tables (true_revenue, true_cost), which only "
                      "synthetic data has; {} has none: give a scores file instead",
                      name, rows.name));
  };
  if (name == "oracle") {
    need_truth();
    s.view = rows.truth();
    return s;
  }
  if (name == "random") {
    s.table = metrics::random_scores(n, m, st.boot.seed, threads);
  } else if (name == "true_roi") {
    need_truth();
    s.table = metrics::true_roi_scores(rows.truth(), threads);
  } else if (policy) {
    policy->check_compatible(rows.meta, rows.name);
    s.table = policy->score(rows.t);
  } else if (model) {
    model->check_compatible(rows.meta, rows.name);
    s.table = train::predict(*model, rows.t);
  } else {
    s.table = metrics::read_score_file(name, rows.t.row_id, rows.meta.num_rows, m);
  }
  s.view = s.table.view();
  return s;
}

Scorer make_scorer(const std::string& name, const Models& models, const EvaluateSettings& st,
                   const Policies& policies) {
  Scorer s;
  s.name = name;
  if (name == "oracle")
    s.label = "oracle (true tables)";
  else if (name == "random")
    s.label = fmt::format("random (seed {})", st.boot.seed);
  else if (name == "true_roi")
    s.label = "true ROI ranking";
  else
    s.label = name, s.from_file = true;
  for (const auto& [n, m] : models)
    if (n == name) s.model = m;
  for (const auto& [n, p] : policies)
    if (n == name) s.policy = p;
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
