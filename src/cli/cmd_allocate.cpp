// \brief `dfcl allocate`: scores (r_hat, c_hat) + budgets -> one arm per user per budget, written to HDF5 or CSV,
// with a JSON summary. lambda comes from the scorer's predicted costs (the exact dual path) or from the IPW estimate of
// the true spend on trial rows (budget_calibration: trial); where trial rows are at hand, what the decisions really
// spend is estimated there, with its CI, beside what the scorer predicts they spend.
#include <fmt/format.h>  // for fmt::format

#include <chrono>   // for steady_clock
#include <cmath>    // for std::isfinite
#include <fstream>  // for std::ofstream

#include "cli/command.h"          // for Registrar, CommonOptions
#include "core/atomic_file.h"       // for AtomicFile
#include "core/error.h"           // for ConfigError, IoError
#include "core/log.h"             // for log::info
#include "core/progress.h"        // for Progress
#include "data/source.h"          // for open_sources, read_rct_rows
#include "data/split.h"           // for shares_file, Split
#include "decide/allocation_file.h"  // for write_allocations, true_values
#include "decide/decision.h"      // for Decider, TrialView, spend_precision
#include "decide/heldout.h"       // for calibration_rows
#include "decide/scorer.h"        // for make_scorer
#include "metrics/oracle.h"       // for true_value
#include "metrics/rct_sample.h"   // for make_sample
#include "metrics/spend.h"        // for BudgetCalibration
#include "solver/mckp.h"          // for DualPath
#include "train/outcome_model.h"  // for EstimatorSettings, outcome_model

namespace dfcl::cli {
namespace {

using nlohmann::json;

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// The rows of one column of `budgets`: the per-capita budget and the CSV column name.
std::string column_name(double value, bool per_capita) {
  return per_capita ? fmt::format("arm_at_{}_per_user", value) : fmt::format("arm_at_{}", value);
}

int run_allocate(const CommonOptions& o) {
  Config cfg = load_config(o);
  const int threads = apply_runtime(cfg);
  const Config a = cfg.sub("allocate");
  const std::string scores_path = a.require<std::string>("scores");
  const std::vector<std::string> data_paths = a.get_strings("data");
  const auto budgets = a.get<std::vector<double>>("budgets", {});
  const auto per_capita = a.get<std::vector<double>>("budgets_per_capita", {});
  const std::string output = a.get<std::string>("output", "");
  const std::string method = a.get<std::string>("method", "dual");
  const std::string calibration_name = a.get<std::string>("budget_calibration", "auto");
  const std::vector<std::string> calibration_data = a.get_strings("calibration_data");
  const std::string calibration_split = a.get<std::string>("calibration_split", "auto");
  const std::string curve_path = a.get<std::string>("curve", "");
  const int64_t curve_points = a.get<int64_t>("curve_points", 200);
  const double level = a.get<double>("level", 0.95);
  const train::EstimatorSettings es =
      train::EstimatorSettings::from(cfg, "allocate.estimator", metrics::EstimatorKind::kDr, true);
  solver::SolveOptions so;
  so.greedy_fill = a.get<bool>("greedy_fill", false);
  so.clamp_below_min = a.get<bool>("clamp", false);
  if (dumped(cfg, o)) return 0;
  cfg.check_all_used();
  if (budgets.empty() == per_capita.empty())
    throw ConfigError("give exactly one of allocate.budgets (absolute) or allocate.budgets_per_capita, as a list");
  if (method != "dual" && method != "bisection")
    throw ConfigError(fmt::format("allocate.method '{}' is not one of dual, bisection", method));
  if (curve_points < 2) throw ConfigError(fmt::format("allocate.curve_points is {}; it must be >= 2", curve_points));
  if (!(level > 0 && level < 1))
    throw ConfigError(fmt::format("allocate.level is {}; a confidence level lies in (0, 1), e.g. 0.95", level));
  const std::vector<double>& given = budgets.empty() ? per_capita : budgets;
  for (size_t k = 0; k < given.size(); ++k) {
    if (!(given[k] > 0) || !std::isfinite(given[k]))
      throw ConfigError(fmt::format("allocate.{} has {} at position {}; budgets are finite and > 0",
                                    budgets.empty() ? "budgets_per_capita" : "budgets", given[k], k));
    for (size_t l = 0; l < k; ++l)
      if (given[l] == given[k])
        throw ConfigError(fmt::format("allocate.{} lists {} twice (positions {} and {}); list each budget once",
                                      budgets.empty() ? "budgets_per_capita" : "budgets", given[k], l, k));
  }
  for (const auto& out : {output, curve_path})  // nothing written may overwrite an input
    for (const auto& in : data_paths)
      if (!out.empty() && data::same_file(out, in))
        throw ConfigError(fmt::format("allocate.output / allocate.curve '{}' is allocate.data's file; write the "
                                      "allocation to a new file",
                                      out));

  const std::unique_ptr<decide::Scorer> scorer =
      decide::make_scorer(scores_path, {0, threads, "allocate.scores"});
  const decide::TrainedOn* trained = scorer->trained_on();  // what the scorer was fitted on (its files and split)
  std::unique_ptr<data::RowSource> src;
  if (!data_paths.empty()) src = data::open_sources(data_paths, "allocate.data");
  if (src && src->meta().num_rows == 0)
    throw DataError(fmt::format("{}: 0 rows, so no users to allocate; check that the file was written completely "
                                "(dfcl info {})",
                                src->name(), src->name()));
  metrics::ScoreTable scores = scorer->score_all(src.get());
  const solver::Scores s = scores.view();

  // Trial rows: those of calibration_data (scored by the scorer), else those of allocate.data; never, by default, the
  // rows the model trained on (decide/heldout.h).
  std::unique_ptr<data::RowSource> cal_src;
  if (!calibration_data.empty()) {
    if (!scorer->scores_any_rows())
      throw ConfigError("allocate.calibration_data needs a scorer that can score its rows: a model checkpoint, a "
                        "cluster policy or oracle (a scores file covers allocate.data's users only)");
    cal_src = data::open_sources(calibration_data, "allocate.calibration_data");
  }
  data::RowSource* trial_src = cal_src ? cal_src.get() : src.get();
  std::vector<decide::TrainedOn> models;
  if (trained) models.push_back(*trained);
  const decide::RowChoice choice = decide::calibration_rows(
      calibration_split, cal_src ? calibration_data : data_paths, models, nullptr, "allocate.calibration_split");
  data::Table trial_rows;
  metrics::ScoreTable trial_scores;
  metrics::RctSample sample;
  train::OutcomeModel om;
  std::unique_ptr<decide::TrialView> trial;
  if (trial_src && data::has_rct_rows(*trial_src)) {  // the rows decide, not the file's rct_rows attribute
    trial_rows = data::read_rct_rows(*trial_src, choice.spec, choice.split, std::numeric_limits<int64_t>::max(),
                                     "allocate's budget calibration");
    if (choice.trained && calibration_split == "auto")
      log::info("allocate.calibration_split = auto: the {} held-out trial rows of {} (validation and test splits), "
                "because {} trained on the others",
                trial_rows.rows, trial_src->name(), choice.trained->origin);
    if (cal_src) {
      trial_scores = scorer->score(trial_rows, cal_src->meta(), cal_src->name());
    } else {  // the trial rows are rows of allocate.data: their scores are rows of `scores`
      trial_scores.n = trial_rows.rows, trial_scores.m = s.m;
      for (int64_t i = 0; i < trial_scores.n; ++i) {
        const int64_t id = trial_rows.row_id[size_t(i)];
        trial_scores.r.insert(trial_scores.r.end(), scores.r.begin() + id * s.m, scores.r.begin() + (id + 1) * s.m);
        trial_scores.c.insert(trial_scores.c.end(), scores.c.begin() + id * s.m, scores.c.begin() + (id + 1) * s.m);
      }
    }
    sample = metrics::make_sample(trial_rows.treatment, trial_rows.revenue, trial_rows.cost, s.m);
    om = train::outcome_model(es, trial_rows, trial_src->meta(), trial_src->name(),
                              {cal_src ? calibration_data : data_paths, choice.split, choice.spec}, threads);
    if (!om.table.r.empty())
      log::info("allocate: outcome model for the {} trial rows: {} ({:.1f}s)", trial_rows.rows, om.description, om.seconds);
    const solver::Scores om_view = om.table.view();
    trial = std::make_unique<decide::TrialView>(trial_scores.view(), sample, es.kind, &om_view, threads);
  }
  const metrics::BudgetCalibration calibration =
      metrics::parse_budget_calibration(calibration_name, trial != nullptr, "allocate.budget_calibration");
  if (calibration == metrics::BudgetCalibration::kTrial && !trial)
    throw ConfigError(fmt::format(
        "allocate.budget_calibration = trial needs trial rows (source = 0) to estimate the true spend on: {}; give "
        "allocate.calibration_data (a trial with the same features) or use budget_calibration=predicted",
        src ? fmt::format("{} has none", src->name()) : "a scores file alone has no rows"));
  if (calibration == metrics::BudgetCalibration::kTrial && (method == "bisection" || so.greedy_fill || so.clamp_below_min))
    throw ConfigError(fmt::format(
        "allocate.method = bisection, greedy_fill and clamp shape the knapsack on predicted costs, but lambda comes from "
        "the trial's spend here (budget_calibration = {}{}): drop them, or set budget_calibration=predicted",
        calibration_name, calibration_name == "auto" ? ", which is trial because the data has trial rows" : ""));
  const bool truth = src && src->meta().has_truth && scorer->scores_any_rows();
  const bool oracle = scores_path == "oracle";
  const double N = double(std::max<int64_t>(1, s.n));
  std::vector<double> targets = budgets;
  std::vector<std::string> columns;
  for (double b : per_capita) {
    if (!std::isfinite(b * double(s.n)))
      throw ConfigError(fmt::format("allocate.budgets_per_capita has {} per user, which over {} users is beyond a "
                                    "double; give a budget per user of the order of the costs",
                                    b, s.n));
    targets.push_back(b * double(s.n));
  }
  for (double b : given) columns.push_back(column_name(b, budgets.empty()));

  auto t0 = std::chrono::steady_clock::now();
  decide::DecisionOptions dopt;
  dopt.calibration = calibration;
  dopt.calibrate_by_estimator = es.calibrate;
  dopt.level = level;
  dopt.solve = so;
  dopt.bisection = method == "bisection";
  dopt.threads = threads;
  const decide::Decider decider(s, trial.get(), trial.get(), dopt);
  std::vector<decide::Decision> decisions;
  std::vector<solver::Allocation> all;
  for (double b : targets) {
    decisions.push_back(decider.at_total(b));
    all.push_back(decisions.back().alloc);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const bool est = trial && es.kind != metrics::EstimatorKind::kIpw;
  const std::string E = est ? metrics::to_string(es.kind) : "ipw";

  json result;
  result["scores"] = scores_path;
  result["users"] = s.n;
  result["arms"] = s.m;
  result["budget_calibration"] = metrics::to_string(calibration);
  result["calibrated_by"] = calibration == metrics::BudgetCalibration::kTrial ? (es.calibrate ? E : "ipw") : "predicted";
  result["estimator"] = trial ? json{{"kind", E}, {"description", es.describe()}} : json(nullptr);
  result["method"] = calibration == metrics::BudgetCalibration::kTrial ? "trial lambda" : method;
  result["seconds"] = seconds;
  if (const solver::DualPath* path = decider.dual_path())
    result["min_spend"] = path->min_spend(), result["max_spend"] = path->max_spend();
  if (trial) result["trial"] = {{"data", trial_src->name()}, {"split", data::to_string(choice.split)}, {"rows", trial_rows.rows}};
  std::string table = fmt::format("{} users x {} arms, {} budget(s), lambda by {} calibration{}{}, {:.3f}s\n", s.n, s.m,
                                  targets.size(), metrics::to_string(calibration),
                                  calibration == metrics::BudgetCalibration::kTrial
                                      ? fmt::format(" on the {} spend", es.calibrate ? E : "ipw")
                                      : "",
                                  trial ? fmt::format(" ({} trial rows of {})", trial_rows.rows, trial_src->name()) : "",
                                  seconds);
  table += fmt::format("  {:>12} {:>11} {:>12} {:>12} {:>23} {:<11} {:>9}{} {:>11} {:>12} {:>10}\n", "budget/user",
                       "lambda*", "predicted", "trial spend", fmt::format("{:.0f}% CI", 100 * level), "verdict", "+-%",
                       est ? fmt::format(" {:>12} {:>23}", E + " spend", "CI") : "", "true spend", "pred. rev", "gap<=");
  // What the decisions truly spend and earn (synthetic data): the oracle's scores are the true tables; a model's
  // decisions are judged against them chunk by chunk.
  std::vector<metrics::PolicyValue> true_values;
  if (truth && oracle)
    for (const auto& x : all) true_values.push_back(metrics::true_value(s, x.arm, threads));
  else if (truth)
    true_values = decide::true_values(*src, all, threads);
  for (size_t k = 0; k < all.size(); ++k) {
    const solver::Allocation& x = all[k];
    const decide::Decision& d = decisions[k];
    std::vector<int64_t> per_arm(size_t(s.m), 0);
    for (uint8_t j : x.arm) ++per_arm[j];
    json r = {{"budget", x.budget},          {"per_capita", x.budget / N}, {"column", columns[k]},
              {"lambda", num(x.lambda)},     {"spend", x.spend},           {"predicted_spend_per_user", x.spend / N},
              {"revenue", x.revenue},        {"lp_bound", num(x.lp_bound)}, {"gap_bound", num(x.gap_bound)},
              {"saturated", x.saturated},    {"clamped", x.clamped},       {"reached", d.reached},
              {"note", x.note},              {"users_per_arm", per_arm},   {"fill_spend", x.fill_spend},
              {"fill_revenue", x.fill_revenue}, {"fill_users", x.fill_users}};
    std::string tspend = "-", ci = "-", verdict = "-", true_spend = "-", prec = "-", est_cols;
    if (trial) {
      if (d.tc.fill > 0) {
        r["tie_fill"] = {{"fill", d.tc.fill}, {"tied_trial_rows", d.tc.tied_trial_rows}};
        log::info("allocate: at {:.6g} per user {} trial rows switch arm at one lambda ({:.6g}); a share {:.3f} of "
                  "such users (by a fixed hash of the row) takes the costlier arm, so that the trial's spend meets "
                  "the budget",
                  x.budget / N, d.tc.tied_trial_rows, x.lambda, d.tc.fill);
      }
      const metrics::BudgetDecision& j = d.ipw;
      r["trial_spend_per_user"] = {{"value", j.spend.value}, {"se", j.spend.se}, {"lo", j.spend.lo}, {"hi", j.spend.hi}};
      r["trial_revenue_per_user"] = j.ipw.revenue;
      r["verdict"] = metrics::to_string(j.verdict);
      // How precisely the calibration rows hold the budget: the spend CI as a share of it, and the trial size for 2%.
      const metrics::Estimate& held = est ? d.estimate.spend : j.spend;
      const decide::SpendPrecision p = decide::spend_precision(held, x.budget / N, trial_rows.rows);
      r["precision"] = {{"estimator", E}, {"half_width_share", num(p.half_width)}, {"target", p.target},
                        {"trial_rows", trial_rows.rows}, {"rows_for_target", p.rows_for_target}};
      prec = fmt::format("{:.1f}", 100 * p.half_width);
      if (est) {
        r["estimate"] = {{"estimator", E},
                         {"spend", {{"value", d.estimate.spend.value}, {"se", d.estimate.spend.se},
                                    {"lo", d.estimate.spend.lo}, {"hi", d.estimate.spend.hi}}},
                         {"revenue", {{"value", d.estimate.revenue.value}, {"se", d.estimate.revenue.se},
                                      {"lo", d.estimate.revenue.lo}, {"hi", d.estimate.revenue.hi}}},
                         {"verdict", metrics::to_string(d.verdict)}};
        est_cols = fmt::format(" {:>12.5g} {:>23}", d.estimate.spend.value,
                               fmt::format("[{:.4g}, {:.4g}]", d.estimate.spend.lo, d.estimate.spend.hi));
      }
      tspend = fmt::format("{:.5g}", j.spend.value), ci = fmt::format("[{:.4g}, {:.4g}]", j.spend.lo, j.spend.hi);
      verdict = metrics::to_string(est ? d.verdict : j.verdict);
      if ((est ? d.verdict : j.verdict) == metrics::SpendVerdict::kOverspends)
        log::warn("allocate: at {:.6g} per user the decisions spend {:.4g} per user on the trial rows ({}, CI [{:.4g}, "
                  "{:.4g}]){}; {}",
                  x.budget / N, held.value, E, held.lo, held.hi,
                  calibration == metrics::BudgetCalibration::kPredicted
                      ? fmt::format(" while the scorer predicts {:.4g}", x.spend / N)
                      : "",
                  calibration == metrics::BudgetCalibration::kPredicted
                      ? "set allocate.budget_calibration=trial to set lambda from the trial's spend"
                      : "no lambda of this scorer meets the budget: its costs barely separate the arms");
      if (p.half_width > 2 * p.target && d.reached)
        log::warn("allocate: at {:.6g} per user the {} trial rows hold the budget only to +-{:.1f}% ({:.0f}% CI of the "
                  "{} spend); about {} trial rows would hold it to +-{:.0f}%",
                  x.budget / N, trial_rows.rows, 100 * p.half_width, 100 * level, E, p.rows_for_target, 100 * p.target);
    }
    if (truth) {
      const metrics::PolicyValue& v = true_values[k];
      r["true_spend_per_user"] = v.cost, r["true_revenue_per_user"] = v.revenue;
      true_spend = fmt::format("{:.5g}", v.cost);
    }
    result["budgets"].push_back(r);
    table += fmt::format("  {:>12.6g} {:>11.6g} {:>12.6g} {:>12} {:>23} {:<11} {:>9}{} {:>11} {:>12.6g} {:>10}{}\n",
                         x.budget / N, x.lambda, x.spend / N, tspend, ci, verdict, prec, est_cols, true_spend,
                         x.revenue / N, std::isfinite(x.gap_bound) ? fmt::format("{:.3g}", x.gap_bound) : "-",
                         x.note.empty() ? "" : "  (" + x.note + ")");
    if (so.greedy_fill)
      table += fmt::format("  {:>12} greedy fill: +{:.6g} spend, +{:.6g} revenue over {} users\n", "", x.fill_spend,
                           x.fill_revenue, x.fill_users);
  }
  table += fmt::format("(per user; predicted = the scorer's own costs of the chosen arms; trial spend = the IPW estimate "
                       "of what the decisions truly spend, on trial rows{}; +-% = the half-width of that CI as a share "
                       "of the budget; true spend = from the true tables (synthetic data))",
                       est ? fmt::format("; {} spend = the {} estimate", E, es.describe()) : "");
  log::info("{}", table);
  if (!output.empty()) {
    decide::write_allocations(output, all, columns, s.n);
    result["output"] = output;
    log::info("assignments written to {}", output);
  }
  // The whole budget curve: predicted spend and revenue of the dual policy at every breakpoint (thinned), and its IPW
  // spend and revenue on the trial rows at the same lambdas.
  if (!curve_path.empty()) {
    const solver::DualPath full(s, threads);
    const std::vector<solver::CurvePoint> curve = full.curve(curve_points);
    AtomicFile out(curve_path, "allocate.curve");
    std::ofstream& f = out.stream();
    f << "lambda,predicted_spend_per_user,predicted_revenue_per_user" << (trial ? ",trial_spend_per_user,trial_revenue_per_user" : "") << '\n';
    for (const auto& p : curve) {
      f << fmt::format("{},{},{}", p.lambda, p.spend / N, p.revenue / N);
      if (trial) {
        const metrics::PolicyValue v = trial->ipw().at(p.lambda);
        f << fmt::format(",{},{}", v.cost, v.revenue);
      }
      f << '\n';
    }
    out.commit();
    result["curve"] = {{"file", curve_path}, {"points", curve.size()}};
    log::info("budget curve ({} points) written to {}", curve.size(), curve_path);
  }
  emit_json(result, o);
  return 0;
}

Registrar reg{{"allocate", "choose one arm per user under each budget (multiple-choice knapsack, exact dual path)",
               [](CLI::App* cmd) {
                 auto o = std::make_shared<CommonOptions>();
                 add_common_options(cmd, *o);
                 cmd->footer(
                     "Config keys: allocate.scores (a model checkpoint .ckpt from `dfcl train`, a cluster policy .policy\n"
                     "from `dfcl cluster`, or oracle, scoring the\n"
                     "users of allocate.data, a dataset or a list of files; or a scores file: HDF5 with r_hat, c_hat,\n"
                     "N x M float32), allocate.budgets [absolute] or allocate.budgets_per_capita [per user],\n"
                     "allocate.budget_calibration (auto|trial|predicted: lambda from the IPW spend on trial rows, or\n"
                     "from the scorer's predicted costs), allocate.calibration_data / calibration_split (the trial\n"
                     "rows; default: those of allocate.data, leaving out the rows the model trained on:\n"
                     "calibration_split auto = held_out there, all elsewhere), allocate.output (.h5 or .csv), allocate.curve (CSV of\n"
                     "the whole budget curve) and curve_points, allocate.level (spend CI), and for predicted\n"
                     "calibration allocate.method (dual|bisection), greedy_fill, clamp (budget below the minimum).\n"
                     "Example: dfcl allocate --set allocate.scores=run/best.ckpt --set allocate.data=users.h5 \\\n"
                     "         --set allocate.budgets_per_capita=[0.5,1]");
                 return [o] { return run_allocate(*o); };
               }}};

}  // namespace
}  // namespace dfcl::cli
