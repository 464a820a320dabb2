// \brief `dfcl evaluate`: decision quality of a scorer on a dataset's RCT rows (docs/metrics.md): EOM with bootstrap
// CIs over a budget grid, the multi-arm cost curve and its area, AUCC (two arms), oracle regret (synthetic data),
// prediction metrics (scores files); a table on stderr, JSON on stdout, an SVG plot of the cost curves.
#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::max
#include <cmath>      // for std::isfinite
#include <map>        // for std::map
#include <memory>     // for std::unique_ptr

#include "cli/command.h"         // for Registrar, CommonOptions
#include "core/error.h"          // for ConfigError, DataError
#include "core/log.h"            // for log::info
#include "core/progress.h"       // for Progress
#include "data/generator.h"      // for Generator
#include "data/loader.h"         // for SplitSpec, parse_split
#include "data/source.h"         // for open_source
#include "metrics/aucc.h"        // for Aucc, roi_scores
#include "metrics/bootstrap.h"   // for bootstrap_eom, bootstrap_aucc
#include "metrics/cost_curve.h"  // for cost_curve
#include "metrics/eom.h"         // for eom_curve, normalise_eom
#include "metrics/oracle.h"      // for Oracle
#include "metrics/prediction.h"  // for prediction_metrics
#include "metrics/score_file.h"  // for read_score_file
#include "metrics/scorers.h"     // for random_scores, true_roi_scores
#include "metrics/svg_plot.h"    // for write_svg
#include "train/trained_model.h"  // for load_trained_model, predict

namespace dfcl::cli {
namespace {

using nlohmann::json;

struct Settings {
  std::string data;
  bool generate = false;
  data::GeneratorConfig gen;
  std::string scores;
  std::vector<double> budgets;
  data::Split split = data::Split::kTest;
  std::string split_name;
  data::SplitSpec split_spec;
  bool design_propensity = false;
  int quantiles = 200;
  metrics::BootstrapOptions boot;
  std::string reference;
  std::string plot;
  int64_t curve_points = 400;
};

Settings read_settings(const Config& cfg, int threads) {
  Settings s;
  s.data = cfg.get<std::string>("evaluate.data", "");
  s.generate = cfg.get<bool>("evaluate.generate", false);
  if (s.generate) s.gen = data::GeneratorConfig::from(cfg.sub("generate"));
  if (s.generate == !s.data.empty())
    throw ConfigError(
        "evaluate: give exactly one of evaluate.data=FILE.h5 or evaluate.generate=true (with generate.* "
        "keys for the population)");
  s.scores = cfg.get<std::string>("evaluate.scores", "");
  if (s.scores.empty())
    throw ConfigError(
        "evaluate.scores is required: oracle, random, true_roi, a model checkpoint from `dfcl train` (.ckpt), or a "
        "scores file (.h5 with r_hat and c_hat, N x M float32 in the dataset's row order); pass --set "
        "evaluate.scores=...");
  s.budgets = cfg.get<std::vector<double>>("evaluate.budgets", {});
  for (double b : s.budgets) metrics::check_budget(b, "evaluate.budgets");
  s.split_name = cfg.get<std::string>("evaluate.split", "test");
  s.split = data::parse_split(s.split_name);
  const auto fr = cfg.get<std::vector<double>>("evaluate.split_fractions", {0.8, 0.1});
  if (fr.size() != 2 || fr[0] < 0 || fr[1] < 0 || fr[0] + fr[1] > 1)
    throw ConfigError(
        "evaluate.split_fractions: give [train, validation], each >= 0, summing to <= 1 (test gets the rest)");
  s.split_spec.train = fr[0], s.split_spec.validation = fr[1];
  s.split_spec.seed = static_cast<uint64_t>(cfg.get<int64_t>("evaluate.split_seed", 0));
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
  s.boot.seed = static_cast<uint64_t>(cfg.get<int64_t>("evaluate.seed", 0));
  s.boot.threads = threads;
  s.reference = cfg.get<std::string>("evaluate.reference", "random");
  s.plot = cfg.get<std::string>("evaluate.plot", "cost_curve.svg");
  s.curve_points = cfg.get<int64_t>("evaluate.curve_points", 400);
  if (s.curve_points < 2) throw ConfigError("evaluate.curve_points must be >= 2");
  return s;
}

// The RCT rows of the chosen split, column by column (only what the metrics read).
struct Rows {
  data::Meta meta;
  std::string name;
  int64_t scanned = 0;
  std::vector<int64_t> id;
  std::vector<int32_t> arm;
  std::vector<float> revenue, cost, true_r, true_c;
  bool keep_features = false;  // a model scores these rows
  std::vector<float> features;

  void take(const data::Table& t, int64_t i) {
    const int M = t.num_arms, F = t.num_features;
    if (keep_features)
      features.insert(features.end(), t.features.begin() + i * F, t.features.begin() + (i + 1) * F);
    id.push_back(t.row_id[i]);
    arm.push_back(t.treatment[i]);
    revenue.push_back(t.revenue[i]);
    cost.push_back(t.cost[i]);
    if (t.with_truth) {
      true_r.insert(true_r.end(), t.true_revenue.begin() + i * M, t.true_revenue.begin() + (i + 1) * M);
      true_c.insert(true_c.end(), t.true_cost.begin() + i * M, t.true_cost.begin() + (i + 1) * M);
    }
  }
  bool has_truth() const { return !true_r.empty(); }
  solver::Scores truth() const { return {int64_t(arm.size()), meta.num_arms, true_r.data(), true_c.data()}; }
};

bool is_checkpoint(const std::string& s) { return s.size() > 5 && s.compare(s.size() - 5, 5, ".ckpt") == 0; }

Rows read_rows(const Settings& st, int threads) {
  Rows rows;
  rows.keep_features = is_checkpoint(st.scores);
  auto eligible = [&](int64_t id, uint8_t src) {
    return src == uint8_t(data::Source::kRct) && (st.split == data::Split::kAll || st.split_spec.of(id) == st.split);
  };
  data::Table t;
  if (st.generate) {
    // Generated rows [0, rct_rows) are the trial; observational rows are never evaluated, so they are not built.
    data::Generator gen(st.gen);
    rows.meta = gen.meta();
    rows.name = fmt::format("generated (seed {}, {} RCT rows)", st.gen.seed, st.gen.rct_rows);
    const int64_t N = st.gen.rct_rows, block = 65536 * std::max(1, threads);
    Progress bar("generate", N);
    for (int64_t a = 0; a < N; a += block) {
      const int64_t n = std::min(block, N - a);
      gen.fill(a, n, t, threads);
      for (int64_t i = 0; i < n; ++i)
        if (eligible(t.row_id[i], t.source[i])) rows.take(t, i);
      bar.advance(n);
    }
    rows.scanned = N;
  } else {
    auto src = data::open_source(st.data);
    rows.meta = src->meta();
    rows.name = st.data;
    const int64_t N = rows.meta.num_rows, chunk = src->chunk_rows();
    std::vector<uint8_t> source;
    Progress bar("read", N);
    for (int64_t a = 0; a < N; a += chunk) {
      const int64_t n = std::min(chunk, N - a);
      src->read_source(a, n, source);  // cheap pre-scan: skip chunks without an eligible row
      bool any = false;
      for (int64_t i = 0; i < n && !any; ++i) any = eligible(a + i, source[i]);
      if (any) {
        src->read(a, n, t);
        for (int64_t i = 0; i < n; ++i)
          if (eligible(t.row_id[i], t.source[i])) rows.take(t, i);
      }
      bar.advance(n);
    }
    rows.scanned = N;
  }
  if (rows.arm.empty())
    throw DataError(
        fmt::format("{}: no RCT rows in the '{}' split; evaluate needs randomised-trial rows (source = 0): "
                    "use evaluate.split=all or a dataset with a trial",
                    rows.name, st.split_name));
  return rows;
}

metrics::RctSample make_sample(const Rows& rows, bool design) {
  metrics::RctSample s;
  s.n = int64_t(rows.arm.size());
  s.m = rows.meta.num_arms;
  s.arm = rows.arm.data(), s.revenue = rows.revenue.data(), s.cost = rows.cost.data();
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

// One scorer: owned scores (or a view of the true tables) and whether they came from a file.
struct Scorer {
  std::string name, label;
  metrics::ScoreTable table;
  solver::Scores view;
  bool from_file = false;
};

Scorer make_scorer(const std::string& what, const Rows& rows, const Settings& st, int threads) {
  Scorer s;
  s.name = what;
  const int64_t n = int64_t(rows.arm.size());
  const int m = rows.meta.num_arms;
  auto need_truth = [&] {
    if (!rows.has_truth())
      throw DataError(
          fmt::format("evaluate.scores = {} needs the true tables (true_revenue, true_cost), which only "
                      "synthetic data has; {} has none: give a scores file instead",
                      what, rows.name));
  };
  if (what == "oracle") {
    need_truth();
    s.view = rows.truth();
    s.label = "oracle (true tables)";
    return s;
  }
  if (what == "random") {
    s.table = metrics::random_scores(n, m, st.boot.seed, threads);
    s.label = fmt::format("random (seed {})", st.boot.seed);
  } else if (what == "true_roi") {
    need_truth();
    s.table = metrics::true_roi_scores(rows.truth(), threads);
    s.label = "true ROI ranking";
  } else if (is_checkpoint(what)) {
    // A model from `dfcl train`: score the evaluated rows with it.
    const train::TrainedModel model = train::load_trained_model(what);
    model.check_compatible(rows.meta, rows.name);
    data::Table t;
    t.rows = n, t.num_features = rows.meta.num_features, t.num_arms = m;
    t.features = rows.features;
    s.table = train::predict(model, t);
    s.label = what;
    s.from_file = true;
  } else {
    s.table = metrics::read_score_file(what, rows.id, rows.meta.num_rows, m);
    s.label = what;
    s.from_file = true;
  }
  s.view = s.table.view();
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

json interval_json(const metrics::Interval& ci) {
  if (ci.replicates == 0) return nullptr;
  return {{"lo", ci.lo}, {"hi", ci.hi}, {"se", ci.se}, {"replicates", ci.replicates}};
}

// Finite numbers as they are, NaN as null (JSON has no NaN).
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

struct Evaluated {
  std::vector<metrics::EomPoint> eom;
  std::vector<metrics::Interval> eom_ci;
  metrics::CostCurve curve;
  json j;
};

Evaluated evaluate_scorer(const Scorer& sc, const metrics::RctSample& s, const Rows& rows, const Settings& st,
                          const metrics::Oracle* oracle, int threads) {
  Evaluated ev;
  metrics::IpwPath path(sc.view, s, threads);
  ev.eom = metrics::eom_curve(path, st.budgets);
  if (st.boot.replicates > 0) ev.eom_ci = metrics::bootstrap_eom(path, ev.eom, {}, st.boot);
  metrics::CostCurveOptions co;
  co.quantiles = st.quantiles;
  co.max_points = st.curve_points;
  ev.curve = metrics::cost_curve(path, co);
  json& j = ev.j;
  j["label"] = sc.label;
  j["eom"] = json::array();
  for (size_t k = 0; k < ev.eom.size(); ++k) {
    const auto& p = ev.eom[k];
    json e = {{"budget", p.budget}, {"lambda", p.lambda},   {"revenue", p.revenue},
              {"cost", p.cost},     {"matched", p.matched}, {"iterations", p.iterations}};
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
  if (s.m == 2) {
    const std::vector<double> score = metrics::roi_scores(sc.view);
    metrics::Aucc a(metrics::AuccInput{s.n, s.arm, s.revenue, s.cost, score.data(), 1}, st.quantiles);
    const metrics::AuccResult r = a.result();
    j["aucc"] = {{"value", r.aucc}, {"quantiles", st.quantiles}, {"dr", r.dr}, {"dc", r.dc}};
    if (st.boot.replicates > 0) j["aucc"]["ci"] = interval_json(metrics::bootstrap_aucc(a, r.aucc, st.boot));
  }
  if (oracle) {
    j["oracle"] = json::array();
    for (double b : st.budgets) {
      const metrics::Regret g = oracle->regret(sc.view, b);
      j["oracle"].push_back({{"budget", b},
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
    j["prediction"] = {{"revenue", pred(sc.view.r, rows.revenue.data())}, {"cost", pred(sc.view.c, rows.cost.data())}};
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
  return k == 0 ? "#d62728" : "#1f77b4";
}

int run_evaluate(const CommonOptions& o) {
  Config cfg = load_config(o);
  if (dumped(cfg, o)) return 0;
  const int threads = apply_runtime(cfg);
  Settings st = read_settings(cfg, threads);
  cfg.check_all_used();

  Rows rows = read_rows(st, threads);
  const metrics::RctSample s = make_sample(rows, st.design_propensity);
  if (st.budgets.empty()) st.budgets = default_budgets(s);
  log::info("{}: {} RCT rows in the '{}' split (of {} scanned), {} arms, propensity {}", rows.name, s.n, st.split_name,
            rows.scanned, s.m, st.design_propensity ? "design" : "empirical");

  // The scorer under evaluation first, then the references (random always, oracle when the truth is known).
  std::vector<std::string> names = {st.scores};
  for (const char* ref : {"random", "oracle"})
    if (st.scores != ref && (std::string(ref) != "oracle" || rows.has_truth())) names.push_back(ref);
  if (std::find(names.begin(), names.end(), st.reference) == names.end())
    throw ConfigError(fmt::format("evaluate.reference = '{}' is not one of the evaluated scorers; use random{}{}",
                                  st.reference, rows.has_truth() ? ", oracle" : "",
                                  st.scores != "random" && st.scores != "oracle" ? " or " + st.scores : ""));
  std::unique_ptr<metrics::Oracle> oracle;
  if (rows.has_truth()) oracle = std::make_unique<metrics::Oracle>(rows.truth(), threads);

  std::vector<Scorer> scorers;
  std::vector<Evaluated> results;
  Progress bar("evaluate", int64_t(names.size()), "scorers");
  for (const auto& name : names) {
    scorers.push_back(make_scorer(name, rows, st, threads));
    results.push_back(evaluate_scorer(scorers.back(), s, rows, st, oracle.get(), threads));
    bar.advance(1);
  }
  bar.finish();
  const size_t ref = std::find(names.begin(), names.end(), st.reference) - names.begin();
  for (size_t k = 0; k < names.size(); ++k) {
    const metrics::NormalisedEom n = metrics::normalise_eom(results[k].eom, results[ref].eom);
    results[k].j["normalised_eom"] = {
        {"reference", st.reference}, {"ratio", n.ratio}, {"mean_ratio", n.mean_ratio}, {"overall", n.overall}};
  }

  // One table per budget: every scorer's spend, IPW revenue (EOM), true revenue and oracle regret there.
  std::string table;
  for (size_t b = 0; b < st.budgets.size(); ++b) {
    table += fmt::format("{}budget {:.4g} per user{}\n", b ? "\n" : "", st.budgets[b],
                         rows.has_truth() ? " (true revenue and regret from the true tables)" : "");
    table += fmt::format("{:<16} {:>10} {:>9} {:>12} {:>23} {:>7} {:>12} {:>9}\n", "scorer", "lambda", "spend",
                         "IPW revenue", fmt::format("{:.0f}% CI", 100 * st.boot.level), "norm", "true revenue",
                         "regret");
    for (size_t k = 0; k < names.size(); ++k) {
      const json& j = results[k].j;
      const auto& p = results[k].eom[b];
      std::string ci = results[k].eom_ci.empty()
                           ? std::string("-")
                           : fmt::format("[{:.5g}, {:.5g}]", results[k].eom_ci[b].lo, results[k].eom_ci[b].hi);
      std::string tr = "-", rg = "-";
      if (j.contains("oracle"))
        tr = fmt::format("{:.5g}", j["oracle"][b]["true_revenue"].get<double>()),
        rg = fmt::format("{:.4g}", j["oracle"][b]["regret"].get<double>());
      table += fmt::format("{:<16} {:>10.4g} {:>9.4g}{} {:>11.5g} {:>23} {:>7.4f} {:>12} {:>9}\n",
                           short_name(names[k]), p.lambda, p.cost, p.matched ? ' ' : '*', p.revenue, ci,
                           j["normalised_eom"]["ratio"][b].get<double>(), tr, rg);
    }
  }
  table += fmt::format("\n{:<16} {:>16} {:>10} {:>16}\n", "scorer", "cost-curve area", "AUCC", "norm EOM (all)");
  for (size_t k = 0; k < names.size(); ++k) {
    const json& j = results[k].j;
    const double area = results[k].curve.area;
    table += fmt::format("{:<16} {:>16} {:>10} {:>16.4f}\n", short_name(names[k]),
                         std::isfinite(area) ? fmt::format("{:.4f}", area) : "n/a",
                         j.contains("aucc") ? fmt::format("{:.4f}", j["aucc"]["value"].get<double>()) : "-",
                         j["normalised_eom"]["overall"].get<double>());
  }
  table += fmt::format(
      "(* = the bisection did not reach the budget within {:.0e}; EOM per capita; norm = EOM / EOM of "
      "'{}'; area: 0.5 = random users given arm {})",
      metrics::EomOptions{}.eps_rel, st.reference, results[0].curve.reference_arm);
  log::info("{}", table);
  if (!results[0].curve.note.empty()) log::warn("cost-curve area: {}", results[0].curve.note);

  // Plot.
  if (!st.plot.empty()) {
    metrics::Plot plot;
    plot.title = fmt::format("Cost curve on {} RCT rows ({} split)", s.n, st.split_name);
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
  out["rows_scanned"] = rows.scanned;
  out["rows_evaluated"] = s.n;
  out["arms"] = s.m;
  out["split"] = st.split_name;
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
               "measure the decisions a scorer makes on a dataset's trial rows: EOM, cost curve, AUCC, regret",
               [](CLI::App* cmd) {
                 auto o = std::make_shared<CommonOptions>();
                 add_common_options(cmd, *o);
                 cmd->footer(
                     "Config sections: evaluate (data or generate, scores, budgets, split, propensity, quantiles,\n"
                     "bootstrap, level, seed, reference, plot, curve_points), generate (with evaluate.generate=true),\n"
                     "runtime (threads). docs/metrics.md defines every number.\n"
                     "Example: dfcl evaluate --set evaluate.data=synthetic.h5 --set evaluate.scores=model_scores.h5 "
                     "--set evaluate.budgets=[0.2,0.5]");
                 return [o] { return run_evaluate(*o); };
               }}};

}  // namespace
}  // namespace dfcl::cli
