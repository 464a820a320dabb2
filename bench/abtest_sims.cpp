// \brief Simulation study of the A/B-test estimators (docs/abtest.md, "Simulations"): for each scenario, R replicate
// experiments with a known true effect (src/abtest/simulate.h), every estimator on each, then per estimator the mean
// effect, bias, empirical SD, mean analytic SE, coverage of the 95% CI and the variance reduction against DIM and
// CUPAC from the empirical variances across replicates (with a bootstrap CI over replicates).
//
// Scenarios: aa (A/A, Gaussian, no effect), heavy (DGP-1 with normal, t(2.5), t(3), t(5) and 0.2%-outlier noise, and
// a linear DGP with t(3) noise where the ML covariate is nearly exact, so the spec's anchor (nu+3)(nu-2)/(nu(nu+1))
// applies to STATE/OLS directly), ratio (revenue per order, the delta-method/linearised SE against the empirical SD).
// Replicates run on --threads threads, each with its own local communicator; replicate r of seed s is the same data
// and the same estimates on any thread count. Plain executable (not Google Benchmark): it measures statistics.
#include <ATen/Parallel.h>    // for at::set_num_threads
#include <fmt/format.h>       // for fmt::format, fmt::print
#include <nlohmann/json.hpp>  // for nlohmann::json

#include <algorithm>  // for std::sort, std::min, std::max
#include <atomic>     // for std::atomic
#include <chrono>     // for std::chrono::steady_clock
#include <cmath>      // for std::sqrt, std::isfinite, NAN
#include <cstdint>    // for int64_t, uint64_t
#include <cstdio>     // for std::fprintf
#include <fstream>    // for std::ofstream
#include <map>        // for std::map
#include <mutex>      // for std::mutex, std::lock_guard
#include <stdexcept>  // for std::runtime_error
#include <string>     // for std::string
#include <thread>     // for std::thread
#include <utility>    // for std::pair
#include <vector>     // for std::vector

#include <CLI/CLI.hpp>  // for CLI::App

#include "abtest/abtest.h"      // for analyse, Options, Estimate, estimator_names
#include "abtest/simulate.h"    // for SimSpec, simulate, true_effect
#include "core/rng.h"           // for Rng
#include "dist/communicator.h"  // for make_local_communicator
#include "metrics/svg_plot.h"   // for Plot, Series, write_svg

using namespace dfcl;
using namespace dfcl::abtest;

namespace {

const char* kDescription =
    "Runs R replicate experiments of N units per scenario (defaults: all, R = 1000, N = 20000, seed 1, K = the\n"
    "cores) through every estimator and prints, per estimator: mean effect, bias against the true effect, empirical\n"
    "SD across replicates, mean analytic SE, coverage of the 95% CI, and the variance reduction against DIM and CUPAC\n"
    "(1 - Var_m / Var_base over the replicates; B bootstrap resamples of the replicates for its 95% CI, default\n"
    "2000). --json writes every number, --markdown the tables, --svg the heavy-tail plot (VR against CUPAC by nu).\n"
    "abtest_sims --replot FILE.json --svg FILE draws the plot again from a --json file, without simulating.";

struct Cli {
  std::string scenario = "all";
  int replicates = 1000;
  int64_t n = 20000;
  uint64_t seed = 1;
  int threads = 0;
  int bootstrap = 2000;
  std::string json, markdown, svg, replot;
};

void add_options(CLI::App& app, Cli& c) {
  app.add_option("--scenario", c.scenario, "which simulations")->check(CLI::IsMember({"aa", "heavy", "ratio", "all"}));
  app.add_option("--replicates", c.replicates, "replicate experiments per scenario")->check(CLI::Range(3, 10000000));
  app.add_option("--n", c.n, "units per replicate")->check(CLI::Range(int64_t(20), int64_t(1) << 40));
  app.add_option("--seed", c.seed, "simulation seed");
  app.add_option("--threads", c.threads, "threads over replicates (0 = the cores)")->check(CLI::NonNegativeNumber);
  app.add_option("--bootstrap", c.bootstrap, "bootstrap resamples for the VR intervals")->check(CLI::NonNegativeNumber);
  app.add_option("--json", c.json, "write every number as JSON");
  app.add_option("--markdown", c.markdown, "write the tables as Markdown");
  app.add_option("--svg", c.svg, "write the heavy-tail plot");
  app.add_option("--replot", c.replot, "a --json file to plot again (no simulation)");
}

struct Scenario {
  std::string id;  // aa, dgp1_t3, ...
  SimSpec spec;
};

std::vector<Scenario> scenarios(const std::string& which) {
  std::vector<Scenario> out;
  if (which == "aa" || which == "all") {
    SimSpec s;
    s.dgp = "linear", s.noise = "normal", s.sigma = 2, s.effect = 0;
    out.push_back({"aa", s});
  }
  if (which == "heavy" || which == "all") {
    SimSpec s;
    s.dgp = "dgp1", s.sigma = 25;
    s.noise = "normal";
    out.push_back({"dgp1_normal", s});
    for (double nu : {2.5, 3.0, 5.0}) {
      s.noise = "t", s.nu = nu;
      out.push_back({fmt::format("dgp1_t{:g}", nu), s});
    }
    s.noise = "outliers", s.outlier_frac = 0.002;
    out.push_back({"dgp1_outliers", s});
    SimSpec l;
    l.dgp = "linear", l.noise = "t", l.nu = 3, l.sigma = 5, l.effect = 1;
    out.push_back({"linear_t3", l});
  }
  if (which == "ratio" || which == "all") {
    SimSpec s;
    s.dgp = "ratio";
    out.push_back({"ratio", s});
  }
  return out;
}

/// Per replicate and estimator: effect, se, ci; NaN where the estimator failed or did not apply.
struct Draws {
  std::vector<std::string> methods;
  std::vector<std::vector<double>> effect, se, lo, hi, nu;  // [method][replicate]
  std::map<std::string, std::string> first_error;           // method (or "analyse") -> first message
  std::vector<int> failures;                                // per method
};

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? NAN : s / double(v.size());
}
double var_of(const std::vector<double>& v) {
  if (v.size() < 2) return NAN;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / double(v.size() - 1);
}

/// Variance reduction 1 - Var(a) / Var(b) over the replicates where both are finite, and its percentile-bootstrap
/// 95% CI (B resamples of the replicates, the pairs kept together; a fixed Rng stream, so reproducible).
struct Vr {
  double value = NAN, lo = NAN, hi = NAN;
};
Vr variance_reduction(const std::vector<double>& a, const std::vector<double>& b, int boot, uint64_t seed) {
  std::vector<double> x, y;
  for (size_t r = 0; r < a.size(); ++r)
    if (std::isfinite(a[r]) && std::isfinite(b[r])) x.push_back(a[r]), y.push_back(b[r]);
  Vr out;
  if (x.size() < 3) return out;
  out.value = 1 - var_of(x) / var_of(y);
  if (boot <= 0) return out;
  std::vector<double> stats;
  Rng rng(seed, 0x5eed);
  const size_t m = x.size();
  for (int b = 0; b < boot; ++b) {
    double sx = 0, sxx = 0, sy = 0, syy = 0;
    for (size_t k = 0; k < m; ++k) {
      const size_t j = size_t(rng.uniform() * double(m));
      sx += x[j], sxx += x[j] * x[j], sy += y[j], syy += y[j] * y[j];
    }
    const double vx = sxx - sx * sx / double(m), vy = syy - sy * sy / double(m);
    stats.push_back(1 - vx / vy);
  }
  std::sort(stats.begin(), stats.end());
  out.lo = stats[size_t(0.025 * (boot - 1))];
  out.hi = stats[size_t(0.975 * (boot - 1))];
  return out;
}

Draws run(const Scenario& sc, const Cli& cli, const std::vector<std::string>& methods) {
  Draws d;
  d.methods = methods;
  const size_t M = methods.size(), R = size_t(cli.replicates);
  for (auto* v : {&d.effect, &d.se, &d.lo, &d.hi, &d.nu}) v->assign(M, std::vector<double>(R, NAN));
  d.failures.assign(M, 0);
  std::mutex mu;
  std::atomic<int> next{0};
  int done = 0;
  auto worker = [&] {
    auto comm = dist::make_local_communicator();
    for (int r; (r = next++) < cli.replicates;) {
      const Units units = simulate(sc.spec, cli.seed, uint64_t(r), 0, cli.n);
      Options o;
      o.seed = mix64(cli.seed * 1000003 + uint64_t(r));  // cross-fitting folds: fresh per replicate
      std::vector<Estimate> est;
      try {
        est = analyse(units, o, *comm, methods);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lk(mu);
        d.first_error.emplace("analyse", e.what());
        for (size_t m = 0; m < M; ++m) ++d.failures[m];
        continue;
      }
      std::lock_guard<std::mutex> lk(mu);
      if (++done % std::max(1, cli.replicates / 10) == 0)
        std::fprintf(stderr, "abtest_sims: %s: %d of %d replicates\n", sc.id.c_str(), done, cli.replicates);
      for (const Estimate& e : est) {
        size_t m = 0;
        while (m < M && methods[m] != e.method) ++m;
        if (m == M) continue;
        d.effect[m][size_t(r)] = e.effect;
        d.se[m][size_t(r)] = e.se;
        d.lo[m][size_t(r)] = e.ci_low;
        d.hi[m][size_t(r)] = e.ci_high;
        if (e.details.contains("nu") && e.details["nu"].is_number()) d.nu[m][size_t(r)] = e.details["nu"].get<double>();
      }
      for (size_t m = 0; m < M; ++m)
        if (!std::isfinite(d.effect[m][size_t(r)]) || !std::isfinite(d.se[m][size_t(r)])) ++d.failures[m];
    }
  };
  const int k = std::max(1, std::min(cli.threads, cli.replicates));
  std::vector<std::thread> pool;
  for (int i = 0; i < k; ++i) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  return d;
}

nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

/// The per-estimator statistics of one scenario (JSON, also what the tables print).
nlohmann::json summarise(const Scenario& sc, const Draws& d, double truth, const Cli& cli) {
  nlohmann::json j;
  j["id"] = sc.id;
  j["label"] = sc.spec.label();
  j["dgp"] = sc.spec.dgp;
  j["noise"] = sc.spec.noise;
  if (sc.spec.noise == "t") j["nu"] = sc.spec.nu;
  j["sigma"] = sc.spec.sigma;
  j["truth"] = truth;
  j["n"] = cli.n;
  j["replicates"] = cli.replicates;
  if (sc.spec.noise == "t") j["anchor_state_over_ols"] = (sc.spec.nu + 3) * (sc.spec.nu - 2) / (sc.spec.nu * (sc.spec.nu + 1));
  size_t i_dim = d.methods.size(), i_cupac = d.methods.size();
  for (size_t m = 0; m < d.methods.size(); ++m) {
    if (d.methods[m] == "dim") i_dim = m;
    if (d.methods[m] == "cupac") i_cupac = m;
  }
  nlohmann::json rows = nlohmann::json::array();
  for (size_t m = 0; m < d.methods.size(); ++m) {
    std::vector<double> eff, se, nus;
    int covered = 0, with_ci = 0;
    for (size_t r = 0; r < d.effect[m].size(); ++r) {
      if (!std::isfinite(d.effect[m][r]) || !std::isfinite(d.se[m][r])) continue;
      eff.push_back(d.effect[m][r]);
      se.push_back(d.se[m][r]);
      if (std::isfinite(d.nu[m][r])) nus.push_back(d.nu[m][r]);
      if (std::isfinite(d.lo[m][r]) && std::isfinite(d.hi[m][r])) {
        ++with_ci;
        covered += d.lo[m][r] <= truth && truth <= d.hi[m][r];
      }
    }
    nlohmann::json e;
    e["method"] = d.methods[m];
    e["valid"] = eff.size();
    e["failures"] = d.failures[m];
    const double mean = mean_of(eff), sd = std::sqrt(var_of(eff)), mse = mean_of(se);
    e["mean"] = num(mean);
    e["bias"] = num(mean - truth);
    e["bias_mcse"] = num(sd / std::sqrt(double(eff.size())));
    e["sd"] = num(sd);
    e["mean_se"] = num(mse);
    e["se_over_sd"] = num(mse / sd);
    // SE/SD's sampling error is that of the SD: relative SE ~ 1 / sqrt(2 (R - 1)) for near-normal estimates.
    e["se_over_sd_rel_mcse"] = num(1 / std::sqrt(2.0 * double(eff.size() - 1)));
    const double cov = with_ci ? double(covered) / with_ci : NAN;
    e["coverage"] = num(cov);
    e["coverage_mcse"] = num(std::sqrt(cov * (1 - cov) / with_ci));
    if (!nus.empty()) {
      std::vector<double> s = nus;
      std::sort(s.begin(), s.end());
      e["nu_median"] = s[s.size() / 2];
    }
    const uint64_t bseed = cli.seed * 131 + m;
    if (i_dim < d.methods.size()) {
      const Vr v = variance_reduction(d.effect[m], d.effect[i_dim], cli.bootstrap, bseed);
      e["vr_vs_dim"] = num(v.value);
      e["vr_vs_dim_ci"] = {num(v.lo), num(v.hi)};
    }
    if (i_cupac < d.methods.size()) {
      const Vr v = variance_reduction(d.effect[m], d.effect[i_cupac], cli.bootstrap, bseed + 7);
      e["vr_vs_cupac"] = num(v.value);
      e["vr_vs_cupac_ci"] = {num(v.lo), num(v.hi)};
      // The same from the analytic SEs: 1 - mean(se_m^2) / mean(se_cupac^2) over the replicates where both exist.
      // Under t(3) noise an estimator's empirical variance over R replicates converges slowly (the mean of t(3)
      // draws keeps a tail of index 3, so the variance of the variance is infinite): this one is steadier.
      double sm = 0, sc = 0;
      for (size_t r = 0; r < d.se[m].size(); ++r)
        if (std::isfinite(d.se[m][r]) && std::isfinite(d.se[i_cupac][r]))
          sm += d.se[m][r] * d.se[m][r], sc += d.se[i_cupac][r] * d.se[i_cupac][r];
      e["vr_vs_cupac_from_se"] = num(sc > 0 ? 1 - sm / sc : NAN);
    }
    e["effects"] = d.effect[m];  // per replicate (null: failed), for re-analysis
    e["ses"] = d.se[m];
    rows.push_back(e);
  }
  j["estimators"] = rows;
  nlohmann::json errs = nlohmann::json::object();
  for (const auto& kv : d.first_error) errs[kv.first] = kv.second;
  j["first_errors"] = errs;
  return j;
}

std::string f(const nlohmann::json& v, const char* fmt_spec = "{:.4f}") {
  if (!v.is_number()) return "n/a";
  return fmt::format(fmt::runtime(fmt_spec), v.get<double>());
}
std::string pct(const nlohmann::json& v) { return v.is_number() ? fmt::format("{:.1f}%", 100 * v.get<double>()) : "n/a"; }
std::string pct_ci(const nlohmann::json& e, const char* key) {
  const std::string k = key;
  if (!e.contains(k) || !e[k].is_number()) return "n/a";
  std::string s = pct(e[k]);
  const auto& ci = e[k + "_ci"];
  if (ci.is_array() && ci[0].is_number() && ci[1].is_number())
    s += fmt::format(" [{:.1f}, {:.1f}]", 100 * ci[0].get<double>(), 100 * ci[1].get<double>());
  return s;
}

std::string scenario_table(const nlohmann::json& s) {
  std::string out = fmt::format("**{}** (`{}`): n = {} units per replicate, R = {} replicates, true effect {:.4f}\n\n",
                                s["label"].get<std::string>(), s["id"].get<std::string>(), s["n"].get<int64_t>(),
                                s["replicates"].get<int>(), s["truth"].get<double>());
  out += "| estimator | mean effect | bias (MCSE) | empirical SD | mean SE | SE/SD | 95% CI coverage (MCSE) | "
         "VR vs DIM [95% CI] | VR vs CUPAC [95% CI] |\n|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& e : s["estimators"]) {
    std::string name = e["method"].get<std::string>();
    if (e.contains("nu_median")) name += fmt::format(" (median nu-hat {:.3g})", e["nu_median"].get<double>());
    if (e["failures"].get<int>() > 0) name += fmt::format(" ({} failed)", e["failures"].get<int>());
    out += fmt::format("| {} | {} | {} ({}) | {} | {} | {} | {} ({}) | {} | {} |\n", name, f(e["mean"]), f(e["bias"]),
                       f(e["bias_mcse"]), f(e["sd"]), f(e["mean_se"]), f(e["se_over_sd"], "{:.3f}"),
                       f(e["coverage"], "{:.3f}"), f(e["coverage_mcse"], "{:.3f}"), pct_ci(e, "vr_vs_dim"),
                       pct_ci(e, "vr_vs_cupac"));
  }
  for (auto it = s["first_errors"].begin(); it != s["first_errors"].end(); ++it)
    out += fmt::format("\nFirst error ({}): {}\n", it.key(), it.value().get<std::string>());
  return out + "\n";
}

const nlohmann::json* find_method(const nlohmann::json& s, const std::string& m) {
  for (const auto& e : s["estimators"])
    if (e["method"] == m) return &e;
  return nullptr;
}

/// Heavy tails at a glance: VR of STATE and MLRATE against CUPAC per noise, next to the t anchor.
std::string heavy_table(const nlohmann::json& all) {
  std::string out =
      "| scenario | STATE VR vs CUPAC [95% CI] | STATE VR vs CUPAC from SEs | MLRATE VR vs CUPAC [95% CI] | "
      "anchor 1 - (nu+3)(nu-2)/(nu(nu+1)) | STATE median nu-hat | STATE coverage | goal >= 50% |\n"
      "|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : all) {
    if (s["dgp"] == "ratio" || s["id"] == "aa") continue;
    const nlohmann::json* st = find_method(s, "state");
    const nlohmann::json* ml = find_method(s, "mlrate");
    const std::string anchor =
        s.contains("anchor_state_over_ols") ? pct(1 - s["anchor_state_over_ols"].get<double>()) : "n/a (not t noise)";
    std::string goal = "n/a";
    if (st && (*st)["vr_vs_cupac"].is_number()) goal = (*st)["vr_vs_cupac"].get<double>() >= 0.5 ? "holds" : "no";
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", s["label"].get<std::string>(),
                       st ? pct_ci(*st, "vr_vs_cupac") : "n/a", st ? pct((*st)["vr_vs_cupac_from_se"]) : "n/a",
                       ml ? pct_ci(*ml, "vr_vs_cupac") : "n/a", anchor,
                       st && st->contains("nu_median") ? f((*st)["nu_median"], "{:.3g}") : "n/a",
                       st ? f((*st)["coverage"], "{:.3f}") : "n/a", goal);
  }
  return out + "\n";
}

/// Heavy tails at a glance: VR against CUPAC by 1/nu (0 = normal noise), with the t anchor. 1/nu puts the data at
/// the right of the frame, away from the legend (top left).
void write_plot(const std::string& path, const nlohmann::json& all) {
  metrics::Plot p;
  p.title = "Variance reduction against CUPAC by the noise's tail (t(nu); 1/nu = 0: normal)";
  p.xlabel = "1 / nu";
  p.ylabel = "1 - Var(method) / Var(CUPAC) over the replicates";
  metrics::Series anchor{"anchor 1-(nu+3)(nu-2)/(nu(nu+1))", {}, {}, "#444444", true};
  for (double inv = 0; inv <= 0.4901; inv += 0.005) {
    const double nu = 1 / std::max(inv, 1e-9);
    anchor.x.push_back(inv);
    anchor.y.push_back(inv == 0 ? 0.0 : 1 - (nu + 3) * (nu - 2) / (nu * (nu + 1)));
  }
  p.series.push_back(anchor);
  metrics::Series state{"STATE, DGP-1", {}, {}, "#d62728"}, state_se{"STATE, DGP-1, from SEs", {}, {}, "#ff9896", true},
      lin{"STATE, linear t(3)", {}, {}, "#8c564b"}, mlrate{"MLRATE, DGP-1", {}, {}, "#1f77b4"};
  state.markers = state_se.markers = lin.markers = mlrate.markers = true;
  lin.line = false;
  for (const auto& sc : all) {
    if (sc["dgp"] == "ratio" || sc["id"] == "aa" || sc["noise"] == "outliers") continue;
    const double inv = sc["noise"] == "t" ? 1 / sc["nu"].get<double>() : 0.0;
    const nlohmann::json* st = find_method(sc, "state");
    const nlohmann::json* ml = find_method(sc, "mlrate");
    auto add = [&](metrics::Series& s, const nlohmann::json* e, const char* key) {
      if (e && e->contains(key) && (*e)[key].is_number()) s.x.push_back(inv), s.y.push_back((*e)[key].get<double>());
    };
    if (sc["dgp"] == "dgp1") {
      add(state, st, "vr_vs_cupac");
      add(state_se, st, "vr_vs_cupac_from_se");
      add(mlrate, ml, "vr_vs_cupac");
    } else {
      add(lin, st, "vr_vs_cupac");
    }
  }
  for (metrics::Series* s : {&state, &state_se, &lin, &mlrate}) {
    std::vector<std::pair<double, double>> pts;  // joined in order of 1/nu
    for (size_t i = 0; i < s->x.size(); ++i) pts.emplace_back(s->x[i], s->y[i]);
    std::sort(pts.begin(), pts.end());
    s->x.clear(), s->y.clear();
    for (const auto& xy : pts) s->x.push_back(xy.first), s->y.push_back(xy.second);
    if (!s->x.empty()) p.series.push_back(*s);
  }
  metrics::write_svg(path, p);
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli;
  CLI::App app{kDescription};
  add_options(app, cli);
  CLI11_PARSE(app, argc, argv);
  if (cli.threads <= 0) cli.threads = int(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(1);  // parallel over replicates, not inside one
  try {
    if (!cli.replot.empty()) {
      if (cli.svg.empty()) throw std::runtime_error("--replot needs --svg FILE");
      std::ifstream in(cli.replot);
      if (!in) throw std::runtime_error("cannot read " + cli.replot);
      write_plot(cli.svg, nlohmann::json::parse(in)["scenarios"]);
      return 0;
    }
    const std::vector<std::string> methods = estimator_names();
    nlohmann::json all = nlohmann::json::array();
    const auto t0 = std::chrono::steady_clock::now();
    std::string md;
    for (const Scenario& sc : scenarios(cli.scenario)) {
      const auto s0 = std::chrono::steady_clock::now();
      const Draws d = run(sc, cli, methods);
      nlohmann::json s = summarise(sc, d, true_effect(sc.spec), cli);
      s["wall_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count();
      const std::string table = scenario_table(s);
      fmt::print("{}", table);
      std::fflush(stdout);
      md += table;
      all.push_back(s);
    }
    if (cli.scenario == "heavy" || cli.scenario == "all") {
      const std::string h = heavy_table(all);
      fmt::print("{}", h);
      md += h;
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("wall time {:.1f} s on {} threads\n", wall, cli.threads);
    nlohmann::json out;
    out["command"] = fmt::format("abtest_sims --scenario {} --replicates {} --n {} --seed {}", cli.scenario,
                                 cli.replicates, cli.n, cli.seed);
    out["threads"] = cli.threads;
    out["wall_s"] = wall;
    out["scenarios"] = all;
    if (!cli.json.empty()) std::ofstream(cli.json) << out.dump(2) << "\n";
    if (!cli.markdown.empty()) std::ofstream(cli.markdown) << md;
    if (!cli.svg.empty()) write_plot(cli.svg, all);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "abtest_sims: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
