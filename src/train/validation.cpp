// \brief ValidationSet: reading the held-out trial rows once, then the decision metrics of a model on them.
#include "train/validation.h"

#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for torch::NoGradGuard

#include <algorithm>  // for std::min, std::max
#include <chrono>     // for std::chrono
#include <cmath>      // for std::isfinite

#include "core/error.h"             // for DataError
#include "core/log.h"               // for log::info
#include "data/source.h"            // for RowSource
#include "metrics/aucc.h"           // for Aucc, roi_scores
#include "metrics/factor_scores.h"  // for rct_step_costs
#include "decide/decision.h"       // for Decider, TrialView
#include "metrics/policy_value.h"   // for uniform_policy_value
#include "metrics/rct_sample.h"     // for RctSample, empirical_propensity
#include "metrics/scorers.h"        // for random_scores
#include "model/batch.h"            // for to_batch
#include "train/trained_model.h"    // for predict

namespace dfcl::train {

double ValidationResult::select(SelectMetric metric) const {
  switch (metric) {
    case SelectMetric::kEom: return eom_mean;
    case SelectMetric::kDrEom: return dr_eom_mean;
    case SelectMetric::kRegret: return regret_mean;
    case SelectMetric::kAucc: return aucc;
    case SelectMetric::kLoss: return loss;
  }
  return loss;
}

nlohmann::json ValidationResult::to_json() const {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json j;
  j["loss"] = num(loss);
  j["eom_mean"] = num(eom_mean);
  j["eom"] = nlohmann::json::array();
  for (size_t k = 0; k < eom.size(); ++k) {
    nlohmann::json e = {{"budget", eom[k].budget}, {"lambda", num(eom[k].lambda)}, {"revenue", eom[k].revenue},
                        {"cost", eom[k].cost}};
    if (k < decisions.size())
      e["predicted_spend"] = decisions[k].predicted_spend,
      e["spend_ci"] = {num(decisions[k].spend.lo), num(decisions[k].spend.hi)},
      e["verdict"] = metrics::to_string(decisions[k].verdict);
    if (k < regret.size())
      e["true_revenue"] = true_revenue[k], e["regret"] = regret[k], e["relative_regret"] = relative_regret[k];
    j["eom"].push_back(e);
  }
  j["meets_budgets"] = meets_budgets;
  j["overspend"] = overspend;
  j["cost_calibration"] = nlohmann::json::array();
  for (const auto& a : cost_calibration)
    j["cost_calibration"].push_back({{"arm", a.arm}, {"predicted", a.predicted}, {"observed", num(a.observed)}});
  j["cost_factor"] = num(cost_factor);
  j["aucc"] = num(aucc);
  j["regret_mean"] = num(regret_mean);
  if (!dr.empty()) {
    auto est = [&](const metrics::Estimate& e) {
      return nlohmann::json{{"value", num(e.value)}, {"se", num(e.se)}, {"lo", num(e.lo)}, {"hi", num(e.hi)}};
    };
    nlohmann::json d = {{"estimator", dr_estimator},
                        {"eom_mean", num(dr_eom_mean)},
                        {"meets_budgets", dr_meets_budgets},
                        {"overspend", dr_overspend},
                        {"budgets", nlohmann::json::array()}};
    for (const auto& b : dr)
      d["budgets"].push_back({{"budget", b.budget},
                              {"lambda", num(b.lambda)},
                              {"reached", b.reached},
                              {"revenue", est(b.estimate.revenue)},
                              {"spend", est(b.estimate.spend)},
                              {"verdict", metrics::to_string(b.verdict)}});
    j["dr"] = d;
  }
  j["seconds"] = seconds;
  return j;
}

bool BestSoFar::improved_by(const ValidationResult& v, double x, const ValidationConfig& vc) const {
  if (epoch < 0) return true;
  if (vc.metric == SelectMetric::kEom && v.meets_budgets != meets) return v.meets_budgets;
  if (vc.metric == SelectMetric::kEom && !v.meets_budgets) return v.overspend < overspend;
  if (vc.metric == SelectMetric::kDrEom && v.dr_meets_budgets != meets) return v.dr_meets_budgets;
  if (vc.metric == SelectMetric::kDrEom && !v.dr_meets_budgets) return v.dr_overspend < overspend;
  return vc.higher_is_better() ? x > value + vc.min_delta : x < value - vc.min_delta;
}

void BestSoFar::take(const ValidationResult& v, double x, int64_t at_epoch, SelectMetric metric) {
  epoch = at_epoch, value = x;
  const bool dr = metric == SelectMetric::kDrEom;
  meets = dr ? v.dr_meets_budgets : v.meets_budgets, overspend = dr ? v.dr_overspend : v.overspend;
}

ValidationSet::ValidationSet(data::RowSource& src, const data::SplitSpec& split, data::Split which,
                             const ValidationConfig& cfg, int threads, const std::vector<std::string>& files)
    : threads_(threads), quantiles_(cfg.quantiles), calibration_(cfg.calibration) {
  m_ = src.meta().num_arms;
  rows_ = data::read_rct_rows(src, split, which, cfg.max_rows, "validation");
  // Budgets: given, or fractions of the costliest arm's mean cost on these rows.
  metrics::RctSample s = metrics::make_sample(rows_.treatment, rows_.revenue, rows_.cost, m_);
  budgets_ = cfg.budgets;
  if (budgets_.empty()) {
    double top = 0;
    for (int j = 1; j < m_; ++j) top = std::max(top, metrics::uniform_policy_value(s, j).cost);
    if (!(top > 0))
      throw DataError(fmt::format("{}: no treatment arm has a positive mean cost on the validation rows, so there is "
                                  "no default budget; give validation.budgets",
                                  src.name()));
    budgets_ = {0.25 * top, 0.5 * top, 0.75 * top};
  }
  try {
    step_costs_ = metrics::rct_step_costs(s);
  } catch (const DataError& e) {
    step_cost_error_ = e.what();
  }
  // The DR outcome model, once: cross-fitted on these rows, or a model trained on other rows.
  // Selection on another metric carries on without DR when no outcome model can be fitted (a fold without an arm).
  if (metrics::needs_outcome_model(cfg.estimator.kind)) {
    try {
      OutcomeModel om = outcome_model(cfg.estimator, rows_, src.meta(), src.name(), {files, which, split}, threads_);
      outcome_ = std::move(om.table);
      dr_kind_ = cfg.estimator.kind;
      dr_description_ = om.description;
      log::info("validation: DR outcome model for the {} validation rows: {} ({:.1f}s)", rows_.rows, om.description,
                om.seconds);
    } catch (const DataError& e) {
      if (cfg.metric == SelectMetric::kDrEom) throw;
      log::warn("validation: no DR estimate ({}); validation.metric = {} does not need it", e.what(), cfg.metric_name);
    }
  }
  if (rows_.with_truth) {
    oracle_ = std::make_unique<metrics::Oracle>(
        solver::Scores{rows_.rows, m_, rows_.true_revenue.data(), rows_.true_cost.data()}, threads_);
    const metrics::ScoreTable rnd = metrics::random_scores(rows_.rows, m_, 0, threads_);
    for (double b : budgets_) random_regret_.push_back(oracle_->regret(rnd.view(), b).regret);
  }
}

ValidationSet::~ValidationSet() = default;

ValidationResult ValidationSet::evaluate(const model::UpliftNet& net, const at::Tensor& flat,
                                         const model::InputScaler& scaler, const loss::Loss& loss,
                                         const loss::LossContext& ctx) const {
  const auto t0 = std::chrono::steady_clock::now();
  ValidationResult r;
  torch::NoGradGuard no_grad;
  {  // the loss over all validation rows as one batch, on the net's raw outputs
    model::Batch b = model::to_batch(rows_, flat.scalar_type(), flat.device());
    scaler.apply_(b.x);
    r.loss = loss.compute(b, net.forward(flat, b.x), ctx).item<double>();
  }
  const bool factors = loss.learns_factors();
  if (factors && step_costs_.empty())
    throw DataError(fmt::format("validation of a factor model ({}) needs the step costs of the arms: {}", loss.name(),
                                step_cost_error_));
  const ScoreMap map{&loss, step_costs_};
  const metrics::ScoreTable scores = predict(net, scaler, rows_, flat, &map);
  const double loss_value = r.loss;
  r = evaluate_scores(scores);
  r.loss = loss_value;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

ValidationResult ValidationSet::evaluate_scores(const metrics::ScoreTable& scores) const {
  const auto t0 = std::chrono::steady_clock::now();
  ValidationResult r;
  r.loss = std::numeric_limits<double>::quiet_NaN();
  metrics::check_same_shape(scores.view(), rows_.rows, m_, "validation scores");
  metrics::RctSample s = metrics::make_sample(rows_.treatment, rows_.revenue, rows_.cost, m_);
  // lambda per budget: the EOM bisection on these rows (trial), or the model's predicted costs; then what the decisions
  // at that lambda spend in truth (IPW, with CI) against the budget (decide/decision.h).
  const decide::TrialView view(scores.view(), s, metrics::EstimatorKind::kIpw, nullptr, threads_);
  decide::DecisionOptions o;
  o.calibration = calibration_;
  o.solve.clamp_below_min = true;
  o.threads = threads_;
  const decide::Decider decider(scores.view(), &view, &view, o);
  for (double b : budgets_) {
    const decide::Decision d = decider.at(b);
    metrics::EomPoint p = d.tc.point;
    if (calibration_ == metrics::BudgetCalibration::kPredicted)
      p = {}, p.budget = b, p.lambda = d.lambda, p.revenue = d.ipw.ipw.revenue, p.cost = d.ipw.ipw.cost,
      p.matched = d.reached;
    if (d.ipw.verdict == metrics::SpendVerdict::kOverspends) r.meets_budgets = false;
    r.overspend = std::max(r.overspend, (d.ipw.spend.lo - b) / b);
    r.eom.push_back(p);
    r.decisions.push_back(d.ipw);
    r.eom_mean += p.revenue / double(budgets_.size());
  }
  if (!outcome_.r.empty()) {  // lambda by the DR spend, the DR revenue and spend of those decisions
    const solver::Scores om = outcome_.view();
    const decide::TrialView dview(scores.view(), s, dr_kind_, &om, threads_);
    decide::DecisionOptions od = o;
    od.calibrate_by_estimator = true;
    const decide::Decider dd(scores.view(), &dview, &dview, od);
    r.dr_eom_mean = 0;
    r.dr_estimator = dr_description_;
    for (double b : budgets_) {
      const decide::Decision d = dd.at(b);
      r.dr.push_back({b, d.lambda, d.reached, d.estimate, d.verdict});
      if (d.verdict == metrics::SpendVerdict::kOverspends) r.dr_meets_budgets = false;
      r.dr_overspend = std::max(r.dr_overspend, (d.estimate.spend.lo - b) / b);
      r.dr_eom_mean += d.estimate.revenue.value / double(budgets_.size());
    }
  }
  r.cost_calibration = metrics::cost_calibration(scores.view(), s);
  r.cost_factor = metrics::worst_cost_factor(r.cost_calibration);
  if (m_ == 2) {
    const std::vector<double> score = metrics::roi_scores(scores.view());
    metrics::Aucc a(metrics::AuccInput{s.n, s.arm, s.revenue, s.cost, score.data(), 1}, quantiles_);
    r.aucc = a.result().aucc;
  }
  if (oracle_) {
    r.regret_mean = 0;
    for (double b : budgets_) {
      const metrics::Regret g = oracle_->regret(scores.view(), b);
      r.true_revenue.push_back(g.policy.revenue);
      r.regret.push_back(g.regret);
      r.relative_regret.push_back(g.relative_regret);
      r.regret_mean += g.regret / double(budgets_.size());
    }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace dfcl::train
