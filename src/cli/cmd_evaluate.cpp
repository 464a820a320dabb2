// \brief `dfcl evaluate`: decision quality of one or more scorers on a dataset's RCT rows (docs/metrics.md): at each
// budget, the lambda its budget calibration sets, what the decisions spend (predicted, and IPW-estimated in truth with a
// CI) and the verdict against the budget, EOM with bootstrap CIs, oracle regret (synthetic data); the cost curve and its
// area, AUCC (two arms), cost calibration per arm; a ranking that leaves out scorers that overspend. A table on
// stderr, JSON on stdout, an SVG plot of the cost curves.
#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include <algorithm>  // for std::max, std::find, std::sort
#include <cmath>      // for std::isfinite
#include <memory>     // for std::unique_ptr, std::shared_ptr

#include "cli/command.h"          // for Registrar, CommonOptions
#include "cli/evaluate_input.h"   // for EvaluateSettings, Models, EvaluatedRows, Scorer
#include "core/error.h"           // for ConfigError
#include "core/log.h"             // for log::info
#include "core/progress.h"        // for Progress
#include "data/generator.h"       // for Generator
#include "data/source.h"          // for open_sources, MemorySource
#include "metrics/aucc.h"         // for Aucc, roi_scores
#include "metrics/bootstrap.h"    // for bootstrap_eom, bootstrap_at, bootstrap_aucc
#include "metrics/cost_curve.h"   // for cost_curve
#include "metrics/eom.h"          // for eom_at, normalise_eom
#include "metrics/oracle.h"       // for Oracle, true_value
#include "metrics/prediction.h"   // for prediction_metrics
#include "metrics/spend.h"        // for judge_at, cost_calibration
#include "metrics/svg_plot.h"     // for write_svg
#include "solver/mckp.h"          // for policy_at

namespace dfcl::cli {
namespace {

using nlohmann::json;

// Finite numbers as they are, NaN as null (JSON has no NaN).
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json interval_json(const metrics::Interval& ci) {
  if (ci.replicates == 0) return nullptr;
  return {{"lo", ci.lo}, {"hi", ci.hi}, {"se", ci.se}, {"replicates", ci.replicates}};
}

// One scorer at every budget, and its budget-free metrics.
struct Evaluated {
  std::vector<metrics::BudgetDecision> at;  // per budget: lambda, spend (predicted, IPW with CI), verdict
  std::vector<metrics::EomPoint> eom;       // per budget: IPW revenue (EOM) and spend at that lambda
  std::vector<metrics::Interval> eom_ci;
  std::vector<metrics::PolicyValue> true_at;  // synthetic: true revenue and spend of the decisions
  std::vector<metrics::Regret> regret;        // synthetic: oracle regret (the ranking stopped at the true budget)
  std::vector<metrics::ArmCostCalibration> cost_cal;
  metrics::CostCurve curve;
  bool overspends = false;  // at some budget
  json j;
};

Evaluated evaluate_scorer(const Scorer& sc, const Scored& scored, const metrics::IpwPath& path, const EvaluatedRows& rows,
                          const EvaluateSettings& st, const metrics::IpwPath* calibration,
                          const solver::Scores* calibration_scores, const metrics::Oracle* oracle, int threads) {
  Evaluated ev;
  const metrics::RctSample& s = path.sample();
  const solver::Scores& v = scored.view;
  // lambda per budget. Trial calibration on the evaluated rows themselves is the papers' EOM: its revenue CI re-runs
  // the bisection in every bootstrap replicate. Otherwise lambda is fixed before these rows are looked at.
  const bool eom_protocol = st.calibration == metrics::BudgetCalibration::kTrial && !calibration;
  std::vector<std::vector<uint8_t>> policies;  // the decisions per budget
  for (double b : st.budgets) {
    bool reached = true;
    double lambda = 0;
    std::vector<uint8_t> policy;
    if (st.calibration == metrics::BudgetCalibration::kPredicted) {
      lambda = metrics::predicted_lambda(v, b, &reached, threads);
      solver::policy_at(v, lambda, policy);
    } else {  // lambda from the trial's IPW spend, a tie at lambda split (metrics::trial_calibrate)
      const metrics::TrialCalibration tc =
          metrics::trial_calibrate(calibration ? *calibration_scores : v, calibration ? *calibration : path, b);
      lambda = tc.lambda, reached = tc.reached;
      metrics::calibrated_policy(v, tc, policy);
    }
    metrics::BudgetDecision d = metrics::judge_policy(v, path, b, lambda, policy, st.boot.level);
    policies.push_back(std::move(policy));
    d.reached = reached;
    metrics::EomPoint p;
    if (eom_protocol) {
      p = metrics::eom_at(path, b);
    } else {
      p.budget = b, p.lambda = lambda, p.revenue = d.ipw.revenue, p.cost = d.ipw.cost, p.matched = reached;
    }
    ev.overspends = ev.overspends || d.verdict == metrics::SpendVerdict::kOverspends;
    ev.at.push_back(d);
    ev.eom.push_back(p);
  }
  if (st.boot.replicates > 0) {
    if (eom_protocol) {
      ev.eom_ci = metrics::bootstrap_eom(path, ev.eom, {}, st.boot);
    } else {
      std::vector<double> lambdas;
      for (const auto& d : ev.at) lambdas.push_back(d.lambda);
      ev.eom_ci = metrics::bootstrap_at(path, lambdas, st.boot);
    }
  }
  metrics::CostCurveOptions co;
  co.quantiles = st.quantiles;
  co.max_points = st.curve_points;
  ev.curve = metrics::cost_curve(path, co);
  ev.cost_cal = metrics::cost_calibration(v, s);
  json& j = ev.j;
  j["label"] = sc.label;
  j["budget_calibration"] = metrics::to_string(st.calibration);
  j["overspends"] = ev.overspends;
  j["eom"] = json::array();
  for (size_t k = 0; k < ev.eom.size(); ++k) {
    const auto& p = ev.eom[k];
    const auto& d = ev.at[k];
    json e = {{"budget", p.budget},
              {"lambda", p.lambda},
              {"revenue", p.revenue},
              {"cost", p.cost},
              {"matched", p.matched},
              {"stepped", p.stepped},
              {"iterations", p.iterations},
              {"predicted_spend", d.predicted_spend},
              {"ipw_spend", {{"value", d.spend.value}, {"se", d.spend.se}, {"lo", d.spend.lo}, {"hi", d.spend.hi}}},
              {"verdict", metrics::to_string(d.verdict)}};
    e["ci"] = ev.eom_ci.empty() ? json(nullptr) : interval_json(ev.eom_ci[k]);
    j["eom"].push_back(e);
  }
  const auto& c = ev.curve;
  j["cost_curve"] = {{"area", num(c.area)},
                     {"points", c.points},
                     {"reference_arm", c.reference_arm},
                     {"reference_cost", c.reference_cost},
                     {"reference_revenue", c.reference_revenue},
                     {"control_revenue", c.control_revenue},
                     {"control_cost", c.control_cost},
                     {"quantiles", st.quantiles}};
  if (!c.note.empty()) j["cost_curve"]["note"] = c.note;
  j["cost_calibration"] = json::array();
  for (const auto& a : ev.cost_cal)
    j["cost_calibration"].push_back(
        {{"arm", a.arm}, {"predicted", a.predicted}, {"observed", num(a.observed)}, {"ratio", num(a.ratio)}});
  j["cost_calibration_factor"] = num(metrics::worst_cost_factor(ev.cost_cal));
  if (s.m == 2) {
    const std::vector<double> score = metrics::roi_scores(v);
    metrics::Aucc a(metrics::AuccInput{s.n, s.arm, s.revenue, s.cost, score.data(), 1}, st.quantiles);
    const metrics::AuccResult r = a.result();
    j["aucc"] = {{"value", r.aucc}, {"quantiles", st.quantiles}, {"dr", r.dr}, {"dc", r.dc}};
    if (st.boot.replicates > 0) j["aucc"]["ci"] = interval_json(metrics::bootstrap_aucc(a, r.aucc, st.boot));
  }
  if (oracle) {
    j["oracle"] = json::array();
    std::vector<uint8_t> policy;
    for (size_t k = 0; k < st.budgets.size(); ++k) {
      const double b = st.budgets[k];
      policy = policies[k];
      ev.true_at.push_back(metrics::true_value(rows.truth(), policy, threads));
      const metrics::Regret g = oracle->regret(v, b);
      ev.regret.push_back(g);
      j["oracle"].push_back({{"budget", b},
                             {"decisions_true_revenue", ev.true_at.back().revenue},
                             {"decisions_true_cost", ev.true_at.back().cost},
                             {"true_revenue", g.policy.revenue},
                             {"true_cost", g.policy.cost},
                             {"lambda", g.policy_lambda},
                             {"feasible", g.policy_feasible},
                             {"oracle_revenue", g.oracle.revenue},
                             {"oracle_cost", g.oracle.cost},
                             {"oracle_lp_bound", g.oracle_lp_bound},
                             {"regret", g.regret},
                             {"relative_regret", g.relative_regret}});
    }
  }
  if (sc.from_file) {
    auto pred = [&](const float* p, const float* y) {
      const auto r = metrics::prediction_metrics(p, s.m, s.arm, y, s.n);
      json out = {{"mse", r.all.mse}, {"logloss", num(r.all.logloss)}, {"per_arm", json::array()}};
      for (const auto& a : r.arm)
        out["per_arm"].push_back({{"rows", a.rows}, {"mse", num(a.mse)}, {"logloss", num(a.logloss)}});
      return out;
    };
    j["prediction"] = {{"revenue", pred(v.r, rows.t.revenue.data())}, {"cost", pred(v.c, rows.t.cost.data())}};
  }
  return ev;
}

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

// Ranks by `value` (higher is better) among the scorers `eligible` admits; 0 = not ranked.
std::vector<int> rank_by(const std::vector<double>& value, const std::vector<bool>& eligible) {
  std::vector<size_t> order;
  for (size_t k = 0; k < value.size(); ++k)
    if (eligible[k]) order.push_back(k);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return value[a] > value[b]; });
  std::vector<int> rank(value.size(), 0);
  for (size_t r = 0; r < order.size(); ++r) rank[order[r]] = int(r) + 1;
  return rank;
}

int run_evaluate(const CommonOptions& o) {
  Config cfg = load_config(o);
  const int threads = apply_runtime(cfg);
  EvaluateSettings st = EvaluateSettings::from(cfg, threads);
  if (dumped(cfg, o)) return 0;
  cfg.check_all_used();

  Policies policies;
  const Models models = load_models(st, &policies);
  resolve_split(st, models);
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
  log::info("{}: {} RCT rows in the '{}' split (of {} rows), {} arms, propensity {}; budgets calibrated: {}",
            rows.name, s.n, split_label, rows.meta.num_rows, s.m, st.design_propensity ? "design" : "empirical",
            metrics::to_string(st.calibration));
  // Trial calibration on other rows than the evaluated ones (evaluate.calibration_split).
  std::unique_ptr<EvaluatedRows> cal_rows;
  metrics::RctSample cal_sample;
  if (st.calibration == metrics::BudgetCalibration::kTrial && st.calibration_split_name != "evaluated") {
    cal_rows = std::make_unique<EvaluatedRows>(read_rows(*src, st, data::parse_split(st.calibration_split_name)));
    cal_sample = make_sample(*cal_rows, st.design_propensity);
    log::info("budget calibration on the {} RCT rows of the '{}' split", cal_sample.n, st.calibration_split_name);
  }

  // The scorers under evaluation first, then the references (random always, oracle when the truth is known).
  std::vector<std::string> names = st.scores;
  for (const char* ref : {"random", "oracle"})
    if (std::find(names.begin(), names.end(), ref) == names.end() &&
        (std::string(ref) != "oracle" || rows.has_truth()))
      names.push_back(ref);
  if (std::find(names.begin(), names.end(), st.reference) == names.end())
    throw ConfigError(fmt::format("evaluate.reference = '{}' is not one of the evaluated scorers ({})", st.reference,
                                  fmt::join(names, ", ")));
  std::unique_ptr<metrics::Oracle> oracle;
  if (rows.has_truth()) oracle = std::make_unique<metrics::Oracle>(rows.truth(), threads);

  std::vector<Scorer> scorers;
  std::vector<Scored> scored;
  std::vector<Evaluated> results;
  Progress bar("evaluate", int64_t(names.size()), "scorers");
  for (const auto& name : names) {
    scorers.push_back(make_scorer(name, models, st, policies));
    scored.push_back(scorers.back().score(rows, st, threads));
    const metrics::IpwPath path(scored.back().view, s, threads);
    std::unique_ptr<metrics::IpwPath> cal_path;
    Scored cal_scored;
    if (cal_rows) {
      cal_scored = scorers.back().score(*cal_rows, st, threads);
      cal_path = std::make_unique<metrics::IpwPath>(cal_scored.view, cal_sample, threads);
    }
    results.push_back(
        evaluate_scorer(scorers.back(), scored.back(), path, rows, st, cal_path.get(), cal_rows ? &cal_scored.view : nullptr,
                        oracle.get(), threads));
    bar.advance(1);
  }
  bar.finish();
  const size_t ref = std::find(names.begin(), names.end(), st.reference) - names.begin();
  std::vector<double> overall(names.size());
  for (size_t k = 0; k < names.size(); ++k) {
    const metrics::NormalisedEom n = metrics::normalise_eom(results[k].eom, results[ref].eom);
    overall[k] = n.overall;
    results[k].j["normalised_eom"] = {
        {"reference", st.reference}, {"ratio", n.ratio}, {"mean_ratio", n.mean_ratio}, {"overall", n.overall}};
  }

  // One table per budget: every scorer's lambda, spend (predicted; IPW with its CI and the verdict), IPW revenue
  // (EOM), and on synthetic data what its decisions truly spend and earn, and the oracle regret. Ranked by EOM among
  // the scorers whose spend does not exceed the budget.
  const std::string ci_head = fmt::format("{:.0f}% CI", 100 * st.boot.level);
  std::string table;
  for (size_t b = 0; b < st.budgets.size(); ++b) {
    std::vector<double> eom;
    std::vector<bool> ok;
    for (const auto& r : results)
      eom.push_back(r.eom[b].revenue), ok.push_back(r.at[b].verdict != metrics::SpendVerdict::kOverspends);
    const std::vector<int> rank = rank_by(eom, ok);
    table += fmt::format("{}budget {:.4g} per user, lambda by {} calibration{}\n", b ? "\n" : "", st.budgets[b],
                         metrics::to_string(st.calibration),
                         rows.has_truth() ? " (true spend, revenue and regret from the true tables)" : "");
    table += fmt::format("{:<16} {:>9} {:>9} {:>9} {:>21} {:<11} {:>10} {:>21} {:>7} {:>9} {:>9} {:>8} {:>4}\n",
                         "scorer", "lambda", "predicted", "IPW spend", ci_head, "verdict", "IPW rev", ci_head, "norm",
                         "true spend", "true rev", "regret", "rank");
    for (size_t k = 0; k < names.size(); ++k) {
      const Evaluated& r = results[k];
      const auto& p = r.eom[b];
      const auto& d = r.at[b];
      const std::string rci =
          r.eom_ci.empty() ? std::string("-") : fmt::format("[{:.5g}, {:.5g}]", r.eom_ci[b].lo, r.eom_ci[b].hi);
      const std::string sci = fmt::format("[{:.4g}, {:.4g}]", d.spend.lo, d.spend.hi);
      std::string ts = "-", tr = "-", rg = "-";
      if (!r.true_at.empty())
        ts = fmt::format("{:.4g}", r.true_at[b].cost), tr = fmt::format("{:.5g}", r.true_at[b].revenue),
        rg = fmt::format("{:.4g}", r.regret[b].regret);
      table += fmt::format("{:<16} {:>9.4g} {:>9.4g} {:>9.4g} {:>21} {:<11} {:>10.5g} {:>21} {:>7.4f} {:>9} {:>9} "
                           "{:>8} {:>4}\n",
                           short_name(names[k]), p.lambda, d.predicted_spend, d.spend.value, sci,
                           metrics::to_string(d.verdict), p.revenue, rci,
                           r.j["normalised_eom"]["ratio"][b].get<double>(), ts, tr, rg,
                           rank[k] ? std::to_string(rank[k]) : "-");
      results[k].j["eom"][b]["rank"] = rank[k] ? json(rank[k]) : json(nullptr);
    }
  }
  std::vector<bool> meets;
  for (const auto& r : results) meets.push_back(!r.overspends);
  const std::vector<int> overall_rank = rank_by(overall, meets);
  table += fmt::format("\n{:<16} {:>16} {:>10} {:>16} {:>12} {:>5}\n", "scorer", "cost-curve area", "AUCC",
                       "norm EOM (all)", "cost calib.", "rank");
  for (size_t k = 0; k < names.size(); ++k) {
    const json& j = results[k].j;
    const double area = results[k].curve.area;
    const double factor = metrics::worst_cost_factor(results[k].cost_cal);
    table += fmt::format("{:<16} {:>16} {:>10} {:>16.4f} {:>12} {:>5}\n", short_name(names[k]),
                         std::isfinite(area) ? fmt::format("{:.4f}", area) : "n/a",
                         j.contains("aucc") ? fmt::format("{:.4f}", j["aucc"]["value"].get<double>()) : "-",
                         j["normalised_eom"]["overall"].get<double>(),
                         std::isfinite(factor) ? fmt::format("x{:.3g}", factor) : "inf",
                         overall_rank[k] ? std::to_string(overall_rank[k]) : "-");
    results[k].j["rank"] = overall_rank[k] ? json(overall_rank[k]) : json(nullptr);
  }
  table += fmt::format(
      "(verdict: the {:.0f}% CI of the IPW spend against the budget; a scorer that OVERSPENDS is not ranked. "
      "predicted = what the scorer's own costs say the decisions spend. norm = EOM / EOM of '{}'. regret: the "
      "scorer's ranking stopped where its true spend meets the budget. cost calib.: the worst predicted/observed mean "
      "cost of an arm, as a factor. area: 0.5 = random users given arm {})",
      100 * st.boot.level, st.reference, results[0].curve.reference_arm);
  log::info("{}", table);
  for (size_t k = 0; k < names.size(); ++k) {
    const Evaluated& r = results[k];
    for (size_t b = 0; b < st.budgets.size(); ++b) {
      const auto& d = r.at[b];
      if (d.verdict != metrics::SpendVerdict::kOverspends) continue;
      const double factor = metrics::worst_cost_factor(r.cost_cal);
      log::warn("{} OVERSPENDS at budget {:.4g} per user: its decisions spend {:.4g} per user in truth (IPW, {:.0f}% CI "
                "[{:.4g}, {:.4g}]){}; it is not ranked. {}",
                names[k], d.budget, d.spend.value, 100 * st.boot.level, d.spend.lo, d.spend.hi,
                d.reached ? "" : ", and no lambda brings the spend down to the budget",
                st.calibration == metrics::BudgetCalibration::kPredicted
                    ? fmt::format("Its predicted costs are off by up to x{:.3g} (cost calib.); set "
                                  "evaluate.budget_calibration=trial to set lambda from the trial's spend, or fix its "
                                  "cost head",
                                  factor)
                    : "Its ranking cannot meet this budget: its predicted costs barely differ between arms, so "
                      "lambda does not move its decisions (see cost calib.); retrain with a calibrated cost head");
    }
  }
  if (!results[0].curve.note.empty()) log::warn("cost-curve area: {}", results[0].curve.note);

  // Plot.
  if (!st.plot.empty()) {
    metrics::Plot plot;
    plot.title = fmt::format("Cost curve on {} RCT rows ({} split)", s.n, split_label);
    plot.xlabel = "incremental cost per user (IPW, vs everyone on control)";
    plot.ylabel = "incremental revenue per user (IPW)";
    for (size_t k = 0; k < names.size(); ++k) {
      const auto& c = results[k].curve;
      plot.series.push_back({scorers[k].label, c.cost, c.revenue, color_of(names[k], k), names[k] == "random", false});
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
                               {"calibration_rows", cal_rows ? cal_sample.n : s.n}};
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
               "measure the decisions scorers make on a dataset's trial rows: spend, EOM, cost curve, AUCC, regret",
               [](CLI::App* cmd) {
                 auto o = std::make_shared<CommonOptions>();
                 add_common_options(cmd, *o);
                 cmd->footer(
                     "Config sections: evaluate (data or generate, scores [one or a list], budgets, split,\n"
                     "split_fractions, split_seed, budget_calibration, calibration_split, propensity, quantiles,\n"
                     "bootstrap, level, seed, reference, plot, curve_points), generate (with evaluate.generate=true),\n"
                     "runtime (threads). docs/metrics.md defines every number.\n"
                     "Example: dfcl evaluate --set evaluate.data=synthetic.h5 --set evaluate.scores=[a.ckpt,b.ckpt] "
                     "--set evaluate.budgets=[0.2,0.5]");
                 return [o] { return run_evaluate(*o); };
               }}};

}  // namespace
}  // namespace dfcl::cli
