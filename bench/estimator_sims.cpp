// \brief The estimator study (docs/results.md, "Judging decisions on a small trial"): on one of dfcl's generator
// families, how much of the noise in a policy's estimated revenue and spend each device removes (pairing two policies
// on the same rows, the doubly robust correction with each outcome model), and how precisely lambda set by the IPW or
// the DR spend of a small trial holds a budget on new users. Statistics, not timing.
//
//   estimator_sims --family retail --trial-rows 10000 --chunks 40 --json out.json
//
// 1. A TSM-SL model is trained on `--train-rows` trial rows (and a second one stopped after 2 epochs: a close rival, as
//    two epochs of one run are); with random targeting and the oracle they are the policies judged.
// 2. Each policy's lambda at each budget is fixed once, by the IPW spend of 200k fresh trial rows (near exact), so its
//    decisions are a fixed function of the user.
// 3. On `--chunks` independent small trials of `--trial-rows` fresh users each, every policy's revenue and spend are
//    estimated by IPW and by DR with each outcome model (per-arm ridge and TSM-SL cross-fitted on the chunk; the
//    separately trained TSM-SL model), and every pair's difference paired on the same rows. Errors are against the
//    chunk's own true values (the generator's tables).
// 4. On the same chunks, lambda of the first model is calibrated by the IPW spend and by each DR spend, and the true
//    spend of those decisions on 200k new users is compared with the budget.
#include <CLI/CLI.hpp>        // for CLI::App
#include <fmt/format.h>       // for fmt::format
#include <nlohmann/json.hpp>  // for nlohmann::json

#include <cmath>    // for std::sqrt
#include <fstream>  // for std::ofstream
#include <map>      // for std::map
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "core/config.h"              // for Config
#include "core/log.h"                 // for log::set_level
#include "data/generator.h"           // for Generator
#include "decide/crossfit.h"          // for crossfit, ridge_fit_predict
#include "metrics/eom.h"              // for eom_bisect
#include "metrics/estimator_path.h"   // for EstimatorPath
#include "metrics/ipw_path.h"         // for IpwPath
#include "metrics/policy_estimate.h"  // for PolicyEstimator
#include "metrics/scorers.h"          // for random_scores
#include "metrics/spend.h"            // for trial_calibrate, calibrated_policy
#include "train/outcome_model.h"      // for fit_tsm_sl, outcome_model
#include "train/trained_model.h"      // for TrainedModel, predict

using namespace dfcl;
using nlohmann::json;

namespace {

struct Sample {
  data::Table t;
  metrics::RctSample s;
  solver::Scores truth() const { return {t.rows, t.num_arms, t.true_revenue.data(), t.true_cost.data()}; }
};

Sample draw(const data::GeneratorConfig& base, int64_t first, int64_t n, int threads) {
  data::GeneratorConfig c = base;
  c.rct_rows = n, c.observational_rows = 0, c.first_row = first;
  const data::Generator g(c);
  Sample s;
  g.fill(0, n, s.t, threads);
  for (int64_t i = 0; i < n; ++i) s.t.row_id[size_t(i)] = first + i;
  s.s = metrics::make_sample(s.t.treatment, s.t.revenue, s.t.cost, s.t.num_arms);
  return s;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}
double var(const std::vector<double>& v) {
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return v.size() > 1 ? s / double(v.size() - 1) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dfcl estimator study: variance of IPW and DR, pairing, and lambda calibration on small trials"};
  std::string family = "marketing", json_out;
  int64_t trial_rows = 10000, train_rows = 20000, big = 200000;
  int chunks = 40, threads = 2, arms = 0;
  double revenue_noise = 0;
  std::vector<double> budgets;
  app.add_option("--family", family, "marketing | retail");
  app.add_option("--revenue-noise", revenue_noise, "the generator's revenue_noise (0: the family's default)");
  app.add_option("--arms", arms, "arms (0: the family's default)");
  app.add_option("--trial-rows", trial_rows, "rows of each small trial");
  app.add_option("--train-rows", train_rows, "trial rows the models train on");
  app.add_option("--chunks", chunks, "independent small trials");
  app.add_option("--big", big, "rows of the fresh populations that fix lambda and measure the true spend");
  app.add_option("--budgets", budgets, "per-capita budgets (default: the reproduction's for the family)");
  app.add_option("--threads", threads, "threads");
  app.add_option("--json", json_out, "write the results here");
  CLI11_PARSE(app, argc, argv);
  log::set_level(log::Level::kWarn);
  if (budgets.empty()) budgets = family == "retail" ? std::vector<double>{0.3, 0.8, 1.5} : std::vector<double>{0.3, 0.6, 1.0};
  // As a regime's `generate` section would be read (the family's own defaults: retail has 4 arms).
  std::string yaml = fmt::format("family: {}\n", family);
  if (revenue_noise > 0) yaml += fmt::format("revenue_noise: {}\n", revenue_noise);
  if (arms > 0) yaml += fmt::format("arms: {}\n", arms);
  const data::GeneratorConfig gen = data::GeneratorConfig::from(Config::from_string(yaml, "estimator_sims"));
  const int M = data::Generator([&] {
                  data::GeneratorConfig c = gen;
                  c.rct_rows = 1, c.observational_rows = 0;
                  return c;
                }()).meta().num_arms;

  // 1. The models.
  const Sample train = draw(gen, 0, train_rows, threads);
  const data::Meta meta = data::Generator([&] {
                            data::GeneratorConfig c = gen;
                            c.rct_rows = train_rows, c.observational_rows = 0;
                            return c;
                          }()).meta();
  const train::TrainedModel tsm = train::fit_tsm_sl(train.t, meta, 0, 1, threads, "tsm_sl");
  const train::TrainedModel early = train::fit_tsm_sl(train.t, meta, 2, 2, threads, "tsm_sl, 2 epochs");
  const std::vector<std::string> names{"tsm_sl", "tsm_sl_2ep", "random", "oracle"};
  auto score = [&](size_t k, const Sample& s) -> metrics::ScoreTable {
    if (k == 0) return train::predict(tsm, s.t);
    if (k == 1) return train::predict(early, s.t);
    if (k == 2) return metrics::random_scores(s.t.rows, M, 3, threads);
    metrics::ScoreTable t;
    t.n = s.t.rows, t.m = M, t.r = s.t.true_revenue, t.c = s.t.true_cost;
    return t;
  };
  // 2. lambda per policy and budget on a big fresh trial (IPW; the tie split as deployed).
  const Sample cal = draw(gen, int64_t(1) << 40, big, threads);
  std::vector<std::vector<metrics::TrialCalibration>> tc(names.size());
  for (size_t k = 0; k < names.size(); ++k) {
    const metrics::ScoreTable sc = score(k, cal);
    const metrics::IpwPath path(sc.view(), cal.s, threads);
    for (double b : budgets) tc[k].push_back(metrics::trial_calibrate(sc.view(), path, b));
  }
  // 3. The small trials.
  const std::vector<std::string> est{"ipw", "dr_ridge", "dr_tsm_sl_crossfit", "dr_tsm_sl_model"};
  json model_revenue;
  // err[estimator][policy][budget][revenue|spend] over chunks; diff[estimator][pair][budget] (revenue)
  std::vector<std::vector<std::vector<std::vector<std::vector<double>>>>> err(
      est.size(), std::vector<std::vector<std::vector<std::vector<double>>>>(
                      names.size(), std::vector<std::vector<std::vector<double>>>(
                                        budgets.size(), std::vector<std::vector<double>>(2))));
  const std::vector<std::pair<size_t, size_t>> pairs{{0, 1}, {0, 2}, {0, 3}};
  std::vector<std::vector<std::vector<std::vector<double>>>> diff(
      est.size(), std::vector<std::vector<std::vector<double>>>(pairs.size(), std::vector<std::vector<double>>(budgets.size())));
  // 4. lambda calibrated on each small trial for the first model, by each estimator's spend: true spend / budget - 1.
  std::vector<std::vector<std::vector<double>>> spend_dev(est.size(), std::vector<std::vector<double>>(budgets.size()));
  std::vector<std::vector<std::vector<double>>> half_width(est.size(), std::vector<std::vector<double>>(budgets.size()));
  std::vector<std::vector<int>> unreached(est.size(), std::vector<int>(budgets.size(), 0));
  const Sample pop = draw(gen, int64_t(3) << 40, big, threads);
  const metrics::ScoreTable pop_scores = score(0, pop);
  // The first model's true revenue per user at each budget (on the big calibration population): the scale of a share.
  {
    const metrics::ScoreTable sc = score(0, cal);
    json rev = json::array();
    for (size_t b = 0; b < budgets.size(); ++b) {
      std::vector<uint8_t> a;
      metrics::calibrated_policy(sc.view(), tc[0][b], a);
      double r = 0;
      for (int64_t i = 0; i < cal.t.rows; ++i) r += cal.t.true_revenue[size_t(i * M + a[size_t(i)])];
      rev.push_back(r / double(cal.t.rows));
    }
    model_revenue = rev;
  }
  for (int c = 0; c < chunks; ++c) {
    const Sample ch = draw(gen, (int64_t(2) << 40) + int64_t(c) * trial_rows, trial_rows, threads);
    std::vector<metrics::ScoreTable> om(est.size());
    om[1] = decide::crossfit(ch.t, M, 5, uint64_t(c), meta.arm_names, "folds",
                             [&](const data::Table& r, const std::vector<int64_t>& tr, const std::vector<int64_t>& pr,
                                 int) { return decide::ridge_fit_predict(r, M, tr, pr, 1.0); });
    train::EstimatorSettings es;
    es.learner = "tsm_sl", es.seed = uint64_t(c), es.key = "study";
    om[2] = train::outcome_model(es, ch.t, meta, "chunk", {}, threads).table;
    om[3] = train::predict(tsm, ch.t);
    std::vector<std::unique_ptr<metrics::PolicyEstimator>> E(est.size());
    std::vector<solver::Scores> omv(est.size());
    for (size_t e = 0; e < est.size(); ++e) {
      omv[e] = om[e].view();
      E[e] = std::make_unique<metrics::PolicyEstimator>(ch.s, e == 0 ? metrics::EstimatorKind::kIpw : metrics::EstimatorKind::kDr,
                                                        e == 0 ? nullptr : &omv[e]);
    }
    std::vector<std::vector<std::vector<uint8_t>>> arms_of(names.size());
    for (size_t k = 0; k < names.size(); ++k) {
      const metrics::ScoreTable sc = score(k, ch);
      for (size_t b = 0; b < budgets.size(); ++b) {
        std::vector<uint8_t> a;
        metrics::calibrated_policy(sc.view(), tc[k][b], a);
        double tr = 0, tcst = 0;
        for (int64_t i = 0; i < ch.t.rows; ++i)
          tr += ch.t.true_revenue[size_t(i * M + a[size_t(i)])], tcst += ch.t.true_cost[size_t(i * M + a[size_t(i)])];
        tr /= double(ch.t.rows), tcst /= double(ch.t.rows);
        for (size_t e = 0; e < est.size(); ++e) {
          const metrics::PolicyValue v = E[e]->value(a.data());
          err[e][k][b][0].push_back(v.revenue - tr);
          err[e][k][b][1].push_back(v.cost - tcst);
        }
        arms_of[k].push_back(std::move(a));
      }
    }
    for (size_t p = 0; p < pairs.size(); ++p)
      for (size_t b = 0; b < budgets.size(); ++b) {
        const auto& a = arms_of[pairs[p].first][b];
        const auto& z = arms_of[pairs[p].second][b];
        double truth = 0;
        for (int64_t i = 0; i < ch.t.rows; ++i)
          truth += ch.t.true_revenue[size_t(i * M + a[size_t(i)])] - ch.t.true_revenue[size_t(i * M + z[size_t(i)])];
        truth /= double(ch.t.rows);
        for (size_t e = 0; e < est.size(); ++e)
          diff[e][p][b].push_back(E[e]->difference(a.data(), z.data()).revenue.value - truth);
      }
    // Calibration of the first model on this small trial.
    const metrics::ScoreTable sc = score(0, ch);
    for (size_t e = 0; e < est.size(); ++e) {
      const metrics::EstimatorPath path(sc.view(), ch.s, e == 0 ? metrics::EstimatorKind::kIpw : metrics::EstimatorKind::kDr,
                                        e == 0 ? nullptr : &omv[e], threads);
      for (size_t b = 0; b < budgets.size(); ++b) {
        const metrics::EomPoint pt =
            metrics::eom_bisect(budgets[b], path.bound().hi, {}, [&](double l) { return path.at(l); });
        const metrics::TrialCalibration t = metrics::trial_calibrate(
            sc.view(), pt, budgets[b], [&](const uint8_t* pol) { return E[e]->value(pol).cost; });
        std::vector<uint8_t> a, local;
        if (!t.reached) {  // no lambda spends the budget (the model sees nothing more worth its cost): not a miss
          ++unreached[e][b];
          continue;
        }
        metrics::calibrated_policy(pop_scores.view(), t, a);
        double spend = 0;
        for (int64_t i = 0; i < pop.t.rows; ++i) spend += pop.t.true_cost[size_t(i * M + a[size_t(i)])];
        spend /= double(pop.t.rows);
        spend_dev[e][b].push_back(spend / budgets[b] - 1);
        metrics::calibrated_policy(sc.view(), t, local);
        const metrics::PolicyEstimate pe = E[e]->estimate(local.data());
        half_width[e][b].push_back((pe.spend.hi - pe.spend.lo) / 2 / budgets[b]);
      }
    }
    std::fprintf(stderr, "\rchunk %d/%d", c + 1, chunks);
  }
  std::fprintf(stderr, "\n");

  // Summaries.
  json out = {{"model_true_revenue", model_revenue}, {"family", family}, {"revenue_noise", revenue_noise}, {"trial_rows", trial_rows},
              {"train_rows", train_rows}, {"chunks", chunks}, {"budgets", budgets}, {"arms", M}, {"policies", names},
              {"estimators", est}};
  fmt::print("family {} (revenue_noise {}), {} chunks of {} rows, {} arms; models trained on {} rows\n", family,
             revenue_noise, chunks, trial_rows, M, train_rows);
  fmt::print("variance of the error, relative to IPW's (mean over policies and budgets; >1 = less noise than IPW):\n");
  fmt::print("{:<22} {:>10} {:>10} {:>16} {:>16} {:>14}\n", "estimator", "revenue", "spend", "pair d (tsm/2ep)",
             "pair d (others)", "bias (rev, SE)");
  for (size_t e = 0; e < est.size(); ++e) {
    std::vector<double> rr, rc;
    double worst_bias = 0;
    for (size_t k = 0; k < names.size(); ++k)
      for (size_t b = 0; b < budgets.size(); ++b) {
        rr.push_back(var(err[0][k][b][0]) / var(err[e][k][b][0]));
        rc.push_back(var(err[0][k][b][1]) / var(err[e][k][b][1]));
        const auto& v = err[e][k][b][0];
        worst_bias = std::max(worst_bias, std::fabs(mean(v)) / std::sqrt(var(v) / double(v.size())));
      }
    // Pairing: the variance of two independent IPW estimates' difference over the paired one.
    std::vector<double> close, others;
    for (size_t p = 0; p < pairs.size(); ++p)
      for (size_t b = 0; b < budgets.size(); ++b) {
        const double unpaired = var(err[0][pairs[p].first][b][0]) + var(err[0][pairs[p].second][b][0]);
        (p == 0 ? close : others).push_back(unpaired / var(diff[e][p][b]));
      }
    fmt::print("{:<22} {:>9.2f}x {:>9.2f}x {:>15.1f}x {:>15.2f}x {:>14.2f}\n", est[e], mean(rr), mean(rc), mean(close),
               mean(others), worst_bias);
    out["variance_vs_ipw"][est[e]] = {{"revenue", mean(rr)}, {"spend", mean(rc)}};
    out["pairing_vs_unpaired_ipw"][est[e]] = {{"close_rival", mean(close)}, {"other_pairs", mean(others)}};
    out["largest_bias_in_se"][est[e]] = worst_bias;
    // Absolute noise of the paired difference of each pair, per budget (what a trial of this size can resolve), and
    // the first model's true revenue there (to read it as a share).
    json sd = json::array();
    for (size_t p = 0; p < pairs.size(); ++p) {
      json per_b = json::array();
      for (size_t b = 0; b < budgets.size(); ++b) per_b.push_back(std::sqrt(var(diff[e][p][b])));
      sd.push_back({{"pair", names[pairs[p].first] + " - " + names[pairs[p].second]}, {"sd", per_b}});
    }
    out["paired_sd"][est[e]] = sd;
    json per_budget = json::array();
    for (size_t b = 0; b < budgets.size(); ++b) {
      double rms = 0, worst = 0, hw = mean(half_width[e][b]);
      for (double d : spend_dev[e][b]) rms += d * d, worst = std::max(worst, std::fabs(d));
      rms = spend_dev[e][b].empty() ? NAN : std::sqrt(rms / double(spend_dev[e][b].size()));
      per_budget.push_back({{"budget", budgets[b]}, {"rms", rms}, {"worst", worst}, {"mean_half_width", hw},
                            {"mean", mean(spend_dev[e][b])}, {"unreached", unreached[e][b]},
                            {"reached", int(spend_dev[e][b].size())}});
    }
    out["calibration"][est[e]] = per_budget;
  }
  fmt::print("lambda set on one small trial by each spend estimate; true spend on {} new users / budget - 1:\n", big);
  fmt::print("{:<22}", "estimator");
  for (double b : budgets) fmt::print(" {:>28}", fmt::format("b = {}: rms, worst, CI +-", b));
  fmt::print("\n");
  for (size_t e = 0; e < est.size(); ++e) {
    fmt::print("{:<22}", est[e]);
    for (size_t b = 0; b < budgets.size(); ++b) {
      const json& c = out["calibration"][est[e]][b];
      fmt::print(" {:>28}", c["reached"].get<int>() == 0
                                  ? std::string("unspendable")
                                  : fmt::format("{:.1f}%, {:.1f}%, {:.1f}%{}", 100 * c["rms"].get<double>(),
                                                100 * c["worst"].get<double>(), 100 * c["mean_half_width"].get<double>(),
                                                c["unreached"].get<int>() ? fmt::format(" ({} unsp.)", c["unreached"].get<int>()) : ""));
    }
    fmt::print("\n");
  }
  if (!json_out.empty()) std::ofstream(json_out) << out.dump(2) << '\n';
  return 0;
}
