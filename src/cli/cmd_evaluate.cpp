// \brief `dfcl evaluate`: decision quality of one or more scorers on a dataset's trial rows (docs/metrics.md). The
// scorers come from decide/scorer.h, the rows to judge and calibrate on from decide/heldout.h, and every number from
// decide/evaluation.h; this file reads the keys and the rows, and prints: a table per budget and a summary on stderr,
// JSON on stdout, an SVG plot of the cost curves.
#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include <algorithm>  // for std::find
#include <cctype>     // for std::toupper
#include <cmath>      // for std::isfinite
#include <memory>     // for std::unique_ptr

#include "cli/command.h"         // for Registrar, CommonOptions
#include "cli/evaluate_input.h"  // for EvaluateSettings, EvaluatedRows
#include "core/error.h"          // for ConfigError
#include "core/log.h"            // for log::info
#include "core/progress.h"       // for Progress
#include "data/generator.h"      // for Generator
#include "data/source.h"         // for open_sources, MemorySource
#include "decide/evaluation.h"   // for evaluate_scorer, compare
#include "decide/heldout.h"      // for judged_rows, calibration_rows
#include "decide/scorer.h"       // for make_scorer
#include "metrics/eom.h"         // for normalise_eom
#include "metrics/svg_plot.h"    // for write_svg
#include "train/outcome_model.h"  // for outcome_model

namespace dfcl::cli {
namespace {

using nlohmann::json;

// A scorer's name in the table: a file's base name, at most 16 characters.
std::string short_name(const std::string& name) {
  const size_t slash = name.find_last_of('/');
  return (slash == std::string::npos ? name : name.substr(slash + 1)).substr(0, 16);
}

std::string color_of(const std::string& name, size_t k) {
  if (name == "random") return "#7f7f7f";
  if (name == "oracle") return "#2ca02c";
  if (name == "true_roi") return "#ff7f0e";
  static const char* palette[] = {"#d62728", "#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  return palette[k % 6];
}

std::string ci_text(double lo, double hi) { return fmt::format("[{:.4g}, {:.4g}]", lo, hi); }

// The outcome model's predictions for one set of trial rows (DR estimators), with a line in the log.
train::OutcomeModel fit_outcome(const EvaluateSettings& st, const EvaluatedRows& rows, data::Split split,
                                const data::SplitSpec& spec, int threads) {
  train::OutcomeModel om =
      train::outcome_model(st.estimator, rows.t, rows.meta, rows.name, {st.data, split, spec}, threads);
  if (!om.table.r.empty())
    log::info("evaluate: outcome model for the {} trial rows of the '{}' split: {} ({:.1f}s)", rows.n(),
              data::to_string(split), om.description, om.seconds);
  return om;
}

int run_evaluate(const CommonOptions& o) {
  Config cfg = load_config(o);
  const int threads = apply_runtime(cfg);
  EvaluateSettings st = EvaluateSettings::from(cfg, threads);
  if (dumped(cfg, o)) return 0;
  cfg.check_all_used();

  // The scorers under evaluation first (checkpoints are loaded now: what they trained on decides the rows), then the
  // references (random always, oracle when the truth is known).
  decide::ScorerContext ctx{st.boot.seed, threads, "evaluate.scores"};
  std::vector<std::unique_ptr<decide::Scorer>> scorers;
  for (const auto& name : st.scores) scorers.push_back(decide::make_scorer(name, ctx));
  std::vector<const decide::Scorer*> given;
  for (const auto& sc : scorers) given.push_back(sc.get());
  const std::vector<decide::TrainedOn> models = decide::trained_on(given);
  const decide::RowChoice judged = decide::judged_rows(st.split_name, st.split_spec, st.split_spec_given, st.data,
                                                       st.generate, models, "evaluate.split");
  st.split = judged.split, st.split_spec = judged.spec;
  if (!judged.why.empty()) log::info("{}", judged.why);
  const decide::RowChoice cal = decide::calibration_rows(st.calibration_split_name, st.data, models, &judged,
                                                         "evaluate.calibration_split");
  std::unique_ptr<data::RowSource> src;
  if (st.generate) {  // the trial rows [0, rct_rows) of the population; logs are never evaluated
    data::GeneratorConfig g = st.gen;
    g.observational_rows = 0;
    const data::Generator gen(g);
    data::Table t;
    gen.fill(0, gen.rows(), t, threads);
    src = std::make_unique<data::MemorySource>(gen.meta(), std::move(t));
  } else {
    src = data::open_sources(st.data, "evaluate.data");
  }
  const std::string split_label = st.split_name == "auto" ? data::to_string(st.split) : st.split_name;
  const EvaluatedRows rows = read_rows(*src, st, st.split);
  const metrics::RctSample s = make_sample(rows, st.design_propensity);
  if (st.budgets.empty()) st.budgets = default_budgets(s);
  const bool trial = st.calibration == metrics::BudgetCalibration::kTrial;
  log::info("{}: {} RCT rows in the '{}' split (of {} rows), {} arms, propensity {}; budgets calibrated: {}{}; judged "
            "by {}",
            rows.name, s.n, split_label, rows.meta.num_rows, s.m, st.design_propensity ? "design" : "empirical",
            metrics::to_string(st.calibration),
            trial ? fmt::format(" on the {} spend", st.estimator.calibrate ? metrics::to_string(st.estimator.kind) : "ipw")
                  : "",
            st.estimator.describe());
  // Trial calibration on other rows than the evaluated ones (evaluate.calibration_split).
  std::unique_ptr<EvaluatedRows> cal_rows;
  metrics::RctSample cal_sample;
  if (trial && !cal.judged) {
    cal_rows = std::make_unique<EvaluatedRows>(read_rows(*src, st, cal.split));
    cal_sample = make_sample(*cal_rows, st.design_propensity);
    log::info("budget calibration on the {} RCT rows of the '{}' split", cal_sample.n, data::to_string(cal.split));
  }
  const train::OutcomeModel om = fit_outcome(st, rows, st.split, st.split_spec, threads);
  const train::OutcomeModel cal_om = cal_rows ? fit_outcome(st, *cal_rows, cal.split, st.split_spec, threads)
                                              : train::OutcomeModel{};

  std::vector<std::string> names = st.scores;
  for (const char* ref : {"random", "oracle"})
    if (std::find(names.begin(), names.end(), ref) == names.end() && (std::string(ref) != "oracle" || rows.has_truth())) {
      names.push_back(ref);
      scorers.push_back(decide::make_scorer(ref, ctx));
    }
  const std::string reference = st.reference.empty() ? names[0] : st.reference;
  const size_t ref = size_t(std::find(names.begin(), names.end(), reference) - names.begin());
  if (ref == names.size())
    throw ConfigError(fmt::format("evaluate.reference = '{}' is not one of the evaluated scorers ({}); name one of "
                                  "them, or leave it out to compare against the first",
                                  reference, fmt::join(names, ", ")));
  std::unique_ptr<metrics::Oracle> oracle;
  if (rows.has_truth()) oracle = std::make_unique<metrics::Oracle>(rows.truth(), threads);

  decide::EvaluationOptions eo;
  eo.budgets = st.budgets;
  eo.decision.calibration = st.calibration;
  eo.decision.calibrate_by_estimator = st.estimator.calibrate;
  eo.decision.level = st.boot.level;
  eo.decision.solve.clamp_below_min = true;
  eo.decision.threads = threads;
  eo.boot = st.boot;
  eo.quantiles = st.quantiles;
  eo.curve_points = st.curve_points;
  const metrics::EstimatorKind kind = st.estimator.kind;
  const solver::Scores om_view = om.table.view(), cal_om_view = cal_om.table.view();
  std::vector<metrics::ScoreTable> scored(names.size()), cal_scored(names.size());
  std::vector<std::unique_ptr<decide::TrialView>> views, cal_views;
  std::vector<decide::ScorerEvaluation> results;
  Progress bar("evaluate", int64_t(names.size()), "scorers");
  for (size_t k = 0; k < names.size(); ++k) {
    const decide::Scorer& sc = *scorers[k];
    scored[k] = sc.score(rows.t, rows.meta, rows.name);
    views.push_back(std::make_unique<decide::TrialView>(scored[k].view(), s, kind, &om_view, threads));
    if (cal_rows) {
      cal_scored[k] = sc.score(cal_rows->t, cal_rows->meta, cal_rows->name);
      cal_views.push_back(std::make_unique<decide::TrialView>(cal_scored[k].view(), cal_sample,
                                                              st.estimator.calibrate ? kind : metrics::EstimatorKind::kIpw,
                                                              &cal_om_view, threads));
    }
    eo.prediction_metrics = sc.from_file();
    results.push_back(decide::evaluate_scorer(names[k], sc.label(), *views.back(), cal_rows ? *cal_views.back() : *views.back(),
                                              rows.t, oracle.get(), eo));
    bar.advance(1);
  }
  bar.finish();
  {
    std::vector<const decide::TrialView*> v, c;
    for (size_t k = 0; k < names.size(); ++k) v.push_back(views[k].get()), c.push_back(cal_rows ? cal_views[k].get() : views[k].get());
    decide::compare(results, v, c, ref, eo);
  }
  std::vector<double> overall(names.size());
  for (size_t k = 0; k < names.size(); ++k) {
    const metrics::NormalisedEom n = metrics::normalise_eom(results[k].eom, results[ref].eom);
    overall[k] = n.overall;
    results[k].j["normalised_eom"] = {
        {"reference", reference}, {"ratio", n.ratio}, {"mean_ratio", n.mean_ratio}, {"overall", n.overall}};
  }

  // One table per budget: every scorer's lambda, predicted spend, the estimator's spend (CI, verdict) and revenue (CI),
  // the paired difference to the reference and the rank (ties where the paired CI covers 0); with DR also the papers'
  // EOM (IPW); on synthetic data what the decisions truly spend and earn, and the oracle regret.
  const bool ipw = kind == metrics::EstimatorKind::kIpw;
  std::string upper = metrics::to_string(kind);  // the estimator's name in the table: IPW, DR, ...
  for (char& ch : upper) ch = char(std::toupper(static_cast<unsigned char>(ch)));
  const std::string ci_head = fmt::format("{:.0f}% CI", 100 * st.boot.level);
  const std::string ref_head = fmt::format("d vs {}", short_name(reference)).substr(0, 16);
  std::string table;
  for (size_t b = 0; b < st.budgets.size(); ++b) {
    table += fmt::format("{}budget {:.4g} per user, lambda by {} calibration{}{}\n", b ? "\n" : "", st.budgets[b],
                         metrics::to_string(st.calibration),
                         trial ? fmt::format(" on the {} spend", st.estimator.calibrate ? upper : "IPW") : "",
                         rows.has_truth() ? " (true spend, revenue and regret from the true tables)" : "");
    table += fmt::format("{:<16} {:>9} {:>9} {:>9} {:>21} {:<11} {:>9} {:>21} {:>10} {:>21} {:>4}{} {:>9} {:>9} {:>8}\n",
                         "scorer", "lambda", "predicted", upper + " spend", ci_head, "verdict", upper + " rev", ci_head,
                         ref_head, ci_head, "rank", ipw ? "" : fmt::format(" {:>9}", "IPW EOM"), "true spend",
                         "true rev", "regret");
    for (size_t k = 0; k < names.size(); ++k) {
      const decide::ScorerEvaluation& r = results[k];
      const decide::Decision& d = r.at[b];
      // The IPW estimator's revenue is the EOM itself (with its bootstrap CI); DR's is the estimate of the decisions.
      const double rev = ipw ? r.eom[b].revenue : d.estimate.revenue.value;
      const std::string rci = ipw ? (r.eom_ci.empty() ? "-" : ci_text(r.eom_ci[b].lo, r.eom_ci[b].hi))
                                  : ci_text(d.estimate.revenue.lo, d.estimate.revenue.hi);
      const metrics::Interval& dd = r.difference[b];
      std::string ts = "-", tr = "-", rg = "-";
      if (!r.true_at.empty())
        ts = fmt::format("{:.4g}", r.true_at[b].cost), tr = fmt::format("{:.5g}", r.true_at[b].revenue),
        rg = fmt::format("{:.4g}", r.regret[b].regret);
      table += fmt::format(
          "{:<16} {:>9.4g} {:>9.4g} {:>9.4g} {:>21} {:<11} {:>9.5g} {:>21} {:>10.4g} {:>21} {:>4}{} {:>9} {:>9} {:>8}\n",
          short_name(names[k]), d.lambda, d.ipw.predicted_spend, d.estimate.spend.value,
          ci_text(d.estimate.spend.lo, d.estimate.spend.hi), metrics::to_string(d.verdict), rev, rci, dd.estimate,
          k == ref ? "(reference)" : std::isfinite(dd.lo) ? ci_text(dd.lo, dd.hi) : "-",
          decide::ScorerEvaluation::rank_text(r.rank[b], r.tied[b]), ipw ? "" : fmt::format(" {:>9.5g}", r.eom[b].revenue), ts, tr, rg);
      results[k].j["eom"][b]["rank"] = r.rank[b] ? json(r.rank[b]) : json(nullptr);
    }
  }
  table += fmt::format("\n{:<16} {:>10} {:>10} {:>8} {:>9} {:>12} {:>21} {:>11} {:>5}\n", "scorer", "IPW area",
                       ipw ? "" : upper + " area", "AUCC", "norm EOM", "mean " + ref_head.substr(0, 7), ci_head,
                       "cost calib.", "rank");
  for (size_t k = 0; k < names.size(); ++k) {
    const decide::ScorerEvaluation& r = results[k];
    const json& j = r.j;
    auto area = [](double a) { return std::isfinite(a) ? fmt::format("{:.4f}", a) : std::string("n/a"); };
    const double factor = metrics::worst_cost_factor(r.cost_cal);
    const metrics::Interval& md = r.mean_difference;
    table += fmt::format("{:<16} {:>10} {:>10} {:>8} {:>9.4f} {:>12.4g} {:>21} {:>11} {:>5}\n", short_name(names[k]),
                         area(r.curve.area), ipw ? "" : area(r.est_curve.area),
                         j.contains("aucc") ? fmt::format("{:.4f}", j["aucc"]["value"].get<double>()) : "-",
                         j["normalised_eom"]["overall"].get<double>(), md.estimate,
                         k == ref ? "(reference)" : std::isfinite(md.lo) ? ci_text(md.lo, md.hi) : "-",
                         std::isfinite(factor) ? fmt::format("x{:.3g}", factor) : "inf",
                         decide::ScorerEvaluation::rank_text(r.overall_rank, r.overall_tied));
    results[k].j["rank"] = r.overall_rank ? json(r.overall_rank) : json(nullptr);
    results[k].j["tied"] = r.overall_tied;
  }
  table += fmt::format(
      "(estimator: {}. verdict: the {:.0f}% CI of the {} spend against the budget; a scorer that OVERSPENDS is not "
      "ranked. predicted = what the scorer's own costs say the decisions spend. d = {} revenue minus {}'s on the same "
      "rows, with a paired {} CI; '2=' = tied: the CI of the difference to the scorer ranked above cannot exclude 0. "
      "norm = EOM / EOM of '{}'. regret: the scorer's ranking stopped where its true spend meets the budget. cost "
      "calib.: the worst predicted/observed mean cost of an arm, as a factor. area: 0.5 = random users given arm {})",
      st.estimator.describe(), 100 * st.boot.level, upper, upper, reference,
      st.boot.replicates > 0 ? fmt::format("bootstrap ({} replicates)", st.boot.replicates) : std::string("normal"),
      reference, results[0].curve.reference_arm);
  log::info("{}", table);
  for (const auto& r : results)
    for (const auto& d : r.at) {
      if (d.verdict != metrics::SpendVerdict::kOverspends) continue;
      const double factor = metrics::worst_cost_factor(r.cost_cal);
      log::warn("{} OVERSPENDS at budget {:.4g} per user: its decisions spend {:.4g} per user in truth ({}, {:.0f}% CI "
                "[{:.4g}, {:.4g}]){}; it is not ranked. {}",
                r.name, d.budget, d.estimate.spend.value, upper, 100 * st.boot.level, d.estimate.spend.lo,
                d.estimate.spend.hi, d.reached ? "" : ", and no lambda brings the spend down to the budget",
                st.calibration == metrics::BudgetCalibration::kPredicted
                    ? fmt::format("Its predicted costs are off by up to x{:.3g} (cost calib.); set "
                                  "evaluate.budget_calibration=trial to set lambda from the trial's spend, or fix its "
                                  "cost head",
                                  factor)
                : cal_rows && d.reached
                    ? fmt::format("lambda was set on the {} calibration rows ('{}' split), which meet the budget; the "
                                  "judged rows spend more by their sampling error and the calibration rows' (see the "
                                  "spend CI of dfcl allocate on them); calibrate on more rows to hold it closer",
                                  cal_sample.n, data::to_string(cal.split))
                    : "Its ranking cannot meet this budget: its predicted costs barely differ between arms, so "
                      "lambda does not move its decisions (see cost calib.); retrain with a calibrated cost head");
    }
  if (!results[0].curve.note.empty()) log::warn("cost-curve area: {}", results[0].curve.note);

  if (!st.plot.empty()) {  // IPW cost curves solid, the estimator's dashed, EOM points of the first scorer
    metrics::Plot plot;
    plot.title = fmt::format("Cost curve on {} RCT rows ({} split){}", s.n, split_label,
                             ipw ? "" : fmt::format(": IPW solid, {} dashed", upper));
    plot.xlabel = fmt::format("incremental cost per user ({}, vs everyone on control)", ipw ? "IPW" : "IPW / " + upper);
    plot.ylabel = "incremental revenue per user";
    for (size_t k = 0; k < names.size(); ++k) {
      const auto& c = results[k].curve;
      plot.series.push_back({scorers[k]->label(), c.cost, c.revenue, color_of(names[k], k), names[k] == "random", false});
      const auto& e = results[k].est_curve;
      if (!ipw && !e.lambda.empty())
        plot.series.push_back({scorers[k]->label() + " (" + upper + ")", e.cost, e.revenue, color_of(names[k], k), true,
                               false});
    }
    const auto& c0 = results[0].curve;
    if (c0.note.empty())
      plot.series.push_back({fmt::format("arm {} to random users", c0.reference_arm),
                             {0, c0.reference_cost},
                             {0, c0.reference_revenue},
                             "#bcbd22",
                             true,
                             false});
    metrics::Series pts{fmt::format("{} at the budgets (EOM)", names[0]), {}, {}, "#000000", false, true, false};
    for (const auto& p : results[0].eom)
      pts.x.push_back(p.cost - c0.control_cost), pts.y.push_back(p.revenue - c0.control_revenue);
    plot.series.push_back(pts);
    metrics::write_svg(st.plot, plot);
    log::info("cost-curve plot written to {}", st.plot);
  }

  json out;
  out["data"] = rows.name;
  out["rows_scanned"] = rows.meta.num_rows;
  out["rows_evaluated"] = s.n;
  out["arms"] = s.m;
  out["split"] = split_label;
  out["split_fractions"] = {st.split_spec.train, st.split_spec.validation};
  out["split_seed"] = st.split_spec.seed;
  out["budget_calibration"] = {{"kind", metrics::to_string(st.calibration)},
                               {"rows", st.calibration_split_name},
                               {"calibration_rows", cal_rows ? cal_sample.n : s.n},
                               {"by", trial ? (st.estimator.calibrate ? metrics::to_string(kind) : "ipw") : "predicted"}};
  out["estimator"] = {{"kind", metrics::to_string(kind)},
                      {"description", st.estimator.describe()},
                      {"outcome_model", om.description.empty() ? json(nullptr) : json(om.description)},
                      {"outcome_model_seconds", om.seconds + cal_om.seconds},
                      {"reference", reference}};
  out["propensity"] = {{"kind", st.design_propensity ? "design" : "empirical"}, {"values", s.propensity}};
  out["budgets"] = st.budgets;
  out["scores"] = st.scores;
  out["bootstrap"] = {{"replicates", st.boot.replicates}, {"level", st.boot.level}, {"seed", st.boot.seed}};
  out["scorers"] = json::object();
  for (size_t k = 0; k < names.size(); ++k) out["scorers"][names[k]] = results[k].j;
  out["plot"] = st.plot;
  emit_json(out, o);
  return 0;
}

Registrar reg{{"evaluate",
               "measure the decisions scorers make on a dataset's trial rows: spend, revenue (IPW and DR), paired "
               "differences, cost curve, AUCC, regret",
               [](CLI::App* cmd) {
                 auto o = std::make_shared<CommonOptions>();
                 add_common_options(cmd, *o);
                 cmd->footer(
                     "Config sections: evaluate (data or generate, scores [one or a list], budgets, split,\n"
                     "split_fractions, split_seed, budget_calibration, calibration_split, propensity, quantiles,\n"
                     "bootstrap, level, seed, reference, plot, curve_points, estimator.{kind, outcome_model, learner,\n"
                     "folds, ridge, tsm_sl_epochs, seed, calibrate}), generate (with evaluate.generate=true),\n"
                     "runtime (threads). docs/metrics.md defines every number.\n"
                     "Example: dfcl evaluate --set evaluate.data=synthetic.h5 --set evaluate.scores=[a.ckpt,b.ckpt] "
                     "--set evaluate.budgets=[0.2,0.5]");
                 return [o] { return run_evaluate(*o); };
               }}};

}  // namespace
}  // namespace dfcl::cli
