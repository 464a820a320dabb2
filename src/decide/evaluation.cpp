// \brief One scorer judged at a grid of budgets, and the paired comparison of several (see evaluation.h).
#include "decide/evaluation.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::stable_sort
#include <cmath>      // for std::isfinite, std::sqrt
#include <functional>  // for std::function

#include "data/schema.h"          // for Table
#include "metrics/aucc.h"         // for Aucc, roi_scores
#include "metrics/prediction.h"   // for prediction_metrics

namespace dfcl::decide {
namespace {

using nlohmann::json;

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json interval_json(const metrics::Interval& ci) {
  if (ci.replicates == 0) return nullptr;
  return {{"lo", ci.lo}, {"hi", ci.hi}, {"se", ci.se}, {"replicates", ci.replicates}};
}

json estimate_json(const metrics::Estimate& e) {
  return {{"value", num(e.value)}, {"se", num(e.se)}, {"lo", num(e.lo)}, {"hi", num(e.hi)}};
}

}  // namespace

std::string ScorerEvaluation::rank_text(int rank, bool tied) {
  return rank ? std::to_string(rank) + (tied ? "=" : "") : std::string("-");
}

ScorerEvaluation evaluate_scorer(const std::string& name, const std::string& label, const TrialView& judged,
                                 const TrialView& calibration, const data::Table& rows, const metrics::Oracle* oracle,
                                 const EvaluationOptions& o) {
  ScorerEvaluation ev;
  ev.name = name, ev.label = label;
  const metrics::IpwPath& path = judged.ipw();
  const metrics::RctSample& s = judged.sample();
  const solver::Scores& v = judged.scores();
  // lambda per budget. Trial calibration on the judged rows themselves is the papers' EOM: its revenue CI re-runs the
  // bisection in every bootstrap replicate. Otherwise lambda is fixed before these rows are looked at.
  const bool trial = o.decision.calibration == metrics::BudgetCalibration::kTrial;
  const bool eom_protocol = trial && &calibration == &judged;
  const Decider decider(v, trial ? &calibration : nullptr, &judged, o.decision);
  for (double b : o.budgets) {
    Decision d = decider.at(b);
    metrics::EomPoint p;
    if (eom_protocol && !o.decision.calibrate_by_estimator) {
      p = d.tc.point;
    } else if (eom_protocol) {
      p = metrics::eom_at(path, b);  // the papers' EOM: its own IPW bisection
    } else {
      p.budget = b, p.lambda = d.lambda, p.revenue = d.ipw.ipw.revenue, p.cost = d.ipw.ipw.cost, p.matched = d.reached;
    }
    ev.overspends = ev.overspends || d.verdict == metrics::SpendVerdict::kOverspends;
    ev.eom.push_back(p);
    ev.at.push_back(std::move(d));
  }
  if (o.boot.replicates > 0) {
    if (eom_protocol) {
      ev.eom_ci = metrics::bootstrap_eom(path, ev.eom, {}, o.boot);
    } else {
      std::vector<double> lambdas;
      for (const auto& d : ev.at) lambdas.push_back(d.lambda);
      ev.eom_ci = metrics::bootstrap_at(path, lambdas, o.boot);
    }
  }
  metrics::CostCurveOptions co;
  co.quantiles = o.quantiles;
  co.max_points = o.curve_points;
  ev.curve = metrics::cost_curve(path, co);
  if (judged.kind() != metrics::EstimatorKind::kIpw) {
    const metrics::EstimatorPath& ep = judged.path();
    ev.est_curve = metrics::cost_curve_from(
        s.m, [&](int j) { return ep.uniform(j); }, [&](const auto& fn) { ep.sweep(fn); }, co);
  }
  ev.cost_cal = metrics::cost_calibration(v, s);
  json& j = ev.j;
  j["label"] = label;
  j["budget_calibration"] = metrics::to_string(o.decision.calibration);
  j["overspends"] = ev.overspends;
  j["eom"] = json::array();
  for (size_t k = 0; k < ev.eom.size(); ++k) {
    const auto& p = ev.eom[k];
    const auto& d = ev.at[k].ipw;
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
  j["estimate"] = {{"estimator", metrics::to_string(judged.kind())}, {"budgets", json::array()}};
  for (const auto& d : ev.at)
    j["estimate"]["budgets"].push_back({{"budget", d.budget},
                                        {"lambda", d.lambda},
                                        {"reached", d.reached},
                                        {"revenue", estimate_json(d.estimate.revenue)},
                                        {"spend", estimate_json(d.estimate.spend)},
                                        {"verdict", metrics::to_string(d.verdict)}});
  const auto& c = ev.curve;
  j["cost_curve"] = {{"area", num(c.area)},
                     {"points", c.points},
                     {"reference_arm", c.reference_arm},
                     {"reference_cost", c.reference_cost},
                     {"reference_revenue", c.reference_revenue},
                     {"control_revenue", c.control_revenue},
                     {"control_cost", c.control_cost},
                     {"quantiles", o.quantiles}};
  if (!c.note.empty()) j["cost_curve"]["note"] = c.note;
  if (!ev.est_curve.lambda.empty())
    j["estimate"]["cost_curve"] = {{"area", num(ev.est_curve.area)}, {"points", ev.est_curve.points}};
  j["cost_calibration"] = json::array();
  for (const auto& a : ev.cost_cal)
    j["cost_calibration"].push_back(
        {{"arm", a.arm}, {"predicted", a.predicted}, {"observed", num(a.observed)}, {"ratio", num(a.ratio)}});
  j["cost_calibration_factor"] = num(metrics::worst_cost_factor(ev.cost_cal));
  if (s.m == 2) {
    const std::vector<double> score = metrics::roi_scores(v);
    metrics::Aucc a(metrics::AuccInput{s.n, s.arm, s.revenue, s.cost, score.data(), 1}, o.quantiles);
    const metrics::AuccResult r = a.result();
    j["aucc"] = {{"value", r.aucc}, {"quantiles", o.quantiles}, {"dr", r.dr}, {"dc", r.dc}};
    if (o.boot.replicates > 0) j["aucc"]["ci"] = interval_json(metrics::bootstrap_aucc(a, r.aucc, o.boot));
  }
  if (oracle) {
    j["oracle"] = json::array();
    const solver::Scores truth{rows.rows, s.m, rows.true_revenue.data(), rows.true_cost.data()};
    for (size_t k = 0; k < o.budgets.size(); ++k) {
      const double b = o.budgets[k];
      ev.true_at.push_back(metrics::true_value(truth, ev.at[k].judged_arms, o.decision.threads));
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
  if (o.prediction_metrics) {
    auto pred = [&](const float* p, const float* y) {
      const auto r = metrics::prediction_metrics(p, s.m, s.arm, y, s.n);
      json out = {{"mse", r.all.mse}, {"logloss", num(r.all.logloss)}, {"per_arm", json::array()}};
      for (const auto& a : r.arm)
        out["per_arm"].push_back({{"rows", a.rows}, {"mse", num(a.mse)}, {"logloss", num(a.logloss)}});
      return out;
    };
    j["prediction"] = {{"revenue", pred(v.r, rows.revenue.data())}, {"cost", pred(v.c, rows.cost.data())}};
  }
  return ev;
}

namespace {

// Ranks scorers by `value` (higher is better) among the `eligible`: in order, a scorer is tied ("=") with the leader of
// the current group when `tied(leader, q)` says their difference is not resolved.
struct Ranks {
  std::vector<int> rank;
  std::vector<bool> tied;
};
Ranks ranks_with_ties(const std::vector<double>& value, const std::vector<bool>& eligible,
                      const std::function<bool(size_t, size_t)>& tied) {
  std::vector<size_t> order;
  for (size_t k = 0; k < value.size(); ++k)
    if (eligible[k]) order.push_back(k);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return value[a] > value[b]; });
  Ranks r{std::vector<int>(value.size(), 0), std::vector<bool>(value.size(), false)};
  size_t g = 0;
  while (g < order.size()) {
    size_t e = g + 1;
    while (e < order.size() && tied(order[g], order[e])) ++e;
    for (size_t q = g; q < e; ++q) r.rank[order[q]] = int(g + 1), r.tied[order[q]] = e - g > 1;
    g = e;
  }
  return r;
}

}  // namespace

void compare(std::vector<ScorerEvaluation>& evals, const std::vector<const TrialView*>& views,
             const std::vector<const TrialView*>& calibrations, size_t reference, const EvaluationOptions& o) {
  const size_t K = evals.size(), B = o.budgets.size(), V = B + 1;  // per budget, and the mean over budgets
  if (K == 0 || B == 0) return;
  const bool trial = o.decision.calibration == metrics::BudgetCalibration::kTrial;
  // Point estimates: the estimator's revenue of each scorer's decisions, per budget and averaged.
  std::vector<std::vector<double>> est(K, std::vector<double>(V, 0.0));
  for (size_t k = 0; k < K; ++k) {
    for (size_t b = 0; b < B; ++b) est[k][b] = evals[k].at[b].estimate.revenue.value;
    for (size_t b = 0; b < B; ++b) est[k][B] += est[k][b] / double(B);
  }
  // diff(k, l, v) = est[k][v] - est[l][v], with its interval.
  auto at_ = [&](size_t k, size_t l, size_t v) { return (k * K + l) * V + v; };
  std::vector<double> point(K * K * V);
  for (size_t k = 0; k < K; ++k)
    for (size_t l = 0; l < K; ++l)
      for (size_t v = 0; v < V; ++v) point[at_(k, l, v)] = est[k][v] - est[l][v];
  std::vector<metrics::Interval> ci(point.size());
  const int64_t n = views[0]->sample().n;
  if (o.boot.replicates > 0) {
    ci = metrics::bootstrap(n, point, o.boot, [&](const uint32_t* counts, std::vector<double>& out) {
      std::vector<std::vector<double>> val(K, std::vector<double>(V, 0.0));
      for (size_t k = 0; k < K; ++k) {
        const TrialView& jv = *views[k];
        const bool protocol = trial && calibrations[k] == views[k];
        if (protocol) {  // lambda re-calibrated on the replicate, as the decisions were on the judged rows
          const metrics::EstimatorPath& ep = jv.path();
          const metrics::EstimatorPath::Weights we = ep.weigh(counts);
          const bool by_est = o.decision.calibrate_by_estimator && jv.kind() != metrics::EstimatorKind::kIpw;
          metrics::IpwPath::Weights wi;
          if (!by_est) wi = jv.ipw().weigh(counts);
          for (size_t b = 0; b < B; ++b) {
            const metrics::EomPoint p =
                by_est ? metrics::eom_bisect(o.budgets[b], ep.bound().hi, {}, [&](double l) { return ep.at(l, we); })
                       : metrics::eom_at(jv.ipw(), wi, o.budgets[b]);
            val[k][b] = ep.at(p.lambda, we).revenue;
          }
        } else {  // lambda fixed elsewhere: the same decisions, re-weighted
          for (size_t b = 0; b < B; ++b)
            val[k][b] = jv.estimator().value(evals[k].at[b].judged_arms.data(), counts).revenue;
        }
        for (size_t b = 0; b < B; ++b) val[k][B] += val[k][b] / double(B);
      }
      for (size_t k = 0; k < K; ++k)
        for (size_t l = 0; l < K; ++l)
          for (size_t v = 0; v < V; ++v) out[at_(k, l, v)] = val[k][v] - val[l][v];
    });
  } else {  // no bootstrap: the analytic paired CI of the fixed decisions
    for (size_t k = 0; k < K; ++k)
      for (size_t l = 0; l < K; ++l) {
        std::vector<double> mean_k, mean_l;
        for (size_t b = 0; b < B; ++b) {
          const metrics::PolicyEstimate d = views[k]->estimator().difference(
              evals[k].at[b].judged_arms.data(), evals[l].at[b].judged_arms.data(), o.boot.level);
          metrics::Interval& it = ci[at_(k, l, b)];
          it.estimate = point[at_(k, l, b)], it.lo = d.revenue.lo, it.hi = d.revenue.hi, it.se = d.revenue.se;
        }
        metrics::Interval& it = ci[at_(k, l, B)];  // the mean over budgets: budgets treated as independent
        double var = 0;
        for (size_t b = 0; b < B; ++b) var += ci[at_(k, l, b)].se * ci[at_(k, l, b)].se / double(B * B);
        const metrics::Estimate e = metrics::normal_interval(point[at_(k, l, B)], std::sqrt(var), o.boot.level);
        it.estimate = e.value, it.lo = e.lo, it.hi = e.hi, it.se = e.se;
      }
  }
  auto tied = [&](size_t v) {
    return [&, v](size_t a, size_t b) {
      const metrics::Interval& it = ci[at_(a, b, v)];
      return !(it.lo > 0 || it.hi < 0);  // the CI of a - b covers 0 (or is undefined)
    };
  };
  for (size_t b = 0; b < V; ++b) {
    std::vector<double> value(K);
    std::vector<bool> ok(K);
    for (size_t k = 0; k < K; ++k)
      value[k] = est[k][b],
      ok[k] = b < B ? evals[k].at[b].verdict != metrics::SpendVerdict::kOverspends : !evals[k].overspends;
    const Ranks rank = ranks_with_ties(value, ok, tied(b));
    for (size_t k = 0; k < K; ++k) {
      metrics::Interval d = ci[at_(k, reference, b)];
      d.estimate = point[at_(k, reference, b)];
      if (b < B) {
        evals[k].difference.push_back(d);
        evals[k].rank.push_back(rank.rank[k]);
        evals[k].tied.push_back(rank.tied[k]);
      } else {
        evals[k].mean_difference = d;
        evals[k].overall_rank = rank.rank[k], evals[k].overall_tied = rank.tied[k];
      }
    }
  }
  for (size_t k = 0; k < K; ++k) {
    json& e = evals[k].j["estimate"];
    e["reference"] = evals[reference].name;
    for (size_t b = 0; b < B; ++b) {
      const metrics::Interval& d = evals[k].difference[b];
      e["budgets"][b]["difference"] = {{"value", d.estimate}, {"lo", num(d.lo)}, {"hi", num(d.hi)}, {"se", num(d.se)}};
      e["budgets"][b]["rank"] = evals[k].rank[b] ? json(evals[k].rank[b]) : json(nullptr);
      e["budgets"][b]["tied"] = bool(evals[k].tied[b]);
    }
    const metrics::Interval& d = evals[k].mean_difference;
    e["mean_difference"] = {{"value", d.estimate}, {"lo", num(d.lo)}, {"hi", num(d.hi)}, {"se", num(d.se)}};
    e["rank"] = evals[k].overall_rank ? json(evals[k].overall_rank) : json(nullptr);
    e["tied"] = evals[k].overall_tied;
    e["ci"] = o.boot.replicates > 0 ? fmt::format("paired bootstrap, {} replicates", o.boot.replicates)
                                    : std::string("paired normal (analytic)");
  }
}

}  // namespace dfcl::decide
