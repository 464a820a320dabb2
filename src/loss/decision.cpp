// \brief Shared pieces of the decision-focused losses: settings and presets, IPW row weights, α·L_PL, primal λ*.
#include "loss/decision.h"

#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for torch::NoGradGuard, at::zeros

#include <algorithm>  // for std::max
#include <cmath>      // for std::isfinite, std::abs
#include <limits>     // for std::numeric_limits

#include "core/config.h"  // for Config
#include "core/error.h"   // for ConfigError, DataError
#include "solver/ksection.h"  // for ksection_row, ksection_search

namespace dfcl::loss {

DecisionSettings DecisionSettings::from(const Config& s, const std::string& loss_name) {
  DecisionSettings d;
  d.preset = s.get<std::string>("preset", "paper");
  if (d.preset == "paper") {
    d.lambdas = {0.1, 0.5, 1.0}, d.alpha = 1.0, d.ipw = true;
  } else if (d.preset == "reference") {
    d.lambdas = {0.1}, d.alpha = 0.0, d.ipw = loss_name != "pll" && loss_name != "merl";
  } else if (d.preset != "none") {
    throw ConfigError(fmt::format("loss.preset is '{}'; use paper (Λ = [0.1, 0.5, 1], α = 1, IPW), reference (the "
                                  "DFCL reference code: Λ = [0.1], α = 0, raw labels for pll/merl) or none",
                                  d.preset));
  }
  d.lambdas = s.get<std::vector<double>>("lambdas", d.lambdas);
  if (d.lambdas.empty()) throw ConfigError("loss.lambdas is empty; give the λ grid, e.g. [0.1, 0.5, 1.0]");
  for (double l : d.lambdas)
    if (!(l > 0) || !std::isfinite(l))
      throw ConfigError(fmt::format("loss.lambdas holds {}; every λ must be a finite number > 0", l));
  d.alpha = s.get<double>("alpha", d.alpha);
  if (!(d.alpha >= 0) || !std::isfinite(d.alpha))
    throw ConfigError(fmt::format("loss.alpha is {}; it must be >= 0 (the weight of L_PL; 0 = decision loss only)",
                                  d.alpha));
  const std::string w = s.get<std::string>("weighting", d.ipw ? "ipw" : "raw");
  if (w != "ipw" && w != "raw")
    throw ConfigError(fmt::format("loss.weighting is '{}'; use ipw (1/p_t, the paper) or raw (the reference code)", w));
  d.ipw = w == "ipw";
  const std::string head = s.get<std::string>("cost_head", "calibrated");
  if (head != "calibrated" && head != "decision")
    throw ConfigError(fmt::format("loss.cost_head is '{}'; use calibrated (the decision term moves r_hat only: c_hat "
                                  "stays a cost prediction the budget can be spent by) or decision (the papers' form: "
                                  "both heads)",
                                  head));
  d.decision_cost = head == "decision";
  d.prediction = FactualTerms::from(s);
  return d;
}

double batch_total(const model::Batch& b, const LossContext& ctx) {
  if (ctx.total_weight > 0) return ctx.total_weight;
  return b.weight.to(at::kDouble).sum().item<double>();
}

at::Tensor row_weights(const model::Batch& b, const model::Scores& s, const LossContext& ctx, bool ipw) {
  torch::NoGradGuard no_grad;
  const auto opts = s.r_hat.options().requires_grad(false);
  at::Tensor w = b.weight.to(opts.dtype().toScalarType());
  if (!ipw) return w;
  const int64_t M = s.r_hat.size(1);
  std::vector<double> p;
  if (!ctx.arm_propensity.empty()) {
    p = ctx.arm_propensity;
  } else {
    std::vector<double> n = ctx.arm_rows;
    double total = ctx.total_weight;
    if (n.empty()) {
      at::Tensor c = at::zeros({M}, at::TensorOptions().dtype(at::kDouble)).index_add_(0, b.t.cpu(), b.weight.cpu().to(at::kDouble));
      n.assign(c.data_ptr<double>(), c.data_ptr<double>() + M);
      total = 0;
      for (double x : n) total += x;
    }
    if (!(total > 0)) return at::zeros_like(w);
    for (double x : n) p.push_back(x / total);
  }
  if (static_cast<int64_t>(p.size()) != M)
    throw DataError(fmt::format("decision loss: {} arm propensities for {} arms", p.size(), M));
  std::vector<double> inv(p.size());
  for (size_t j = 0; j < p.size(); ++j) inv[j] = p[j] > 0 ? 1.0 / p[j] : 0.0;
  at::Tensor inv_t = at::tensor(inv, at::TensorOptions().dtype(at::kDouble)).to(w.device(), w.scalar_type());
  at::Tensor u = w * inv_t.index_select(0, b.t);
  // An arm with rows but propensity 0 would silently drop them: refuse.
  for (size_t j = 0; j < p.size(); ++j)
    if (!(p[j] > 0) && b.t.eq(int64_t(j)).logical_and(b.weight.gt(0)).any().item<bool>())
      throw DataError(fmt::format("decision loss: arm {} has rows but propensity {}; the dataset's rct_propensity is "
                                  "wrong (re-import with rct_propensity: empirical)",
                                  j, p[j]));
  return u;
}

at::Tensor PredictionTerm::arm_scale(const model::Batch& b, const model::Scores& s, const LossContext& ctx) {
  torch::NoGradGuard no_grad;
  const int64_t M = s.r_hat.size(1);
  const auto opts = s.r_hat.options().requires_grad(false);
  const auto dt = at::TensorOptions().dtype(at::kDouble);
  at::Tensor n;
  if (!ctx.arm_rows.empty()) {
    n = at::tensor(ctx.arm_rows, dt).to(opts.device(), opts.dtype().toScalarType());
  } else if (!ctx.arm_propensity.empty()) {
    n = at::tensor(ctx.arm_propensity, dt).to(opts.device(), opts.dtype().toScalarType());
    n.mul_(ctx.total_weight > 0 ? ctx.total_weight : b.weight.to(at::kDouble).sum().item<double>());
  } else {
    n = at::zeros({M}, opts).index_add_(0, b.t, b.weight.to(s.r_hat.scalar_type()));
  }
  if (n.size(0) != M) throw DataError(fmt::format("decision loss: {} per-arm counts for {} arms", n.size(0), M));
  return n.reciprocal().div_(double(M)).masked_fill_(n.le(0), 0);
}

at::Tensor PredictionTerm::compute(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const {
  at::Tensor coef;
  {
    torch::NoGradGuard no_grad;
    coef = b.weight.to(s.r_hat.scalar_type()) * arm_scale(b, s, ctx).index_select(0, b.t);
  }
  return (coef * terms_.per_row(b, s)).sum();
}

void PredictionTerm::accumulate(const model::Batch& b, const model::Scores& s, const LossContext& ctx, double alpha,
                                at::Tensor& value, at::Tensor& d_r, at::Tensor& d_c) const {
  torch::NoGradGuard no_grad;
  at::Tensor v, gr, gc;
  terms_.value_and_grad(b, s, arm_scale(b, s, ctx), v, gr, gc);
  value.add_(v, alpha);
  d_r.add_(gr, alpha);
  d_c.add_(gc, alpha);
}

LambdaSearch primal_lambda(const at::Tensor& r_hat, const at::Tensor& c_hat, const model::Batch& b,
                           const at::Tensor& ipw, const LossContext& ctx, double budget, int max_iter,
                           double eps_rel, int k_candidates) {
  torch::NoGradGuard no_grad;
  if (!(budget > 0)) throw ConfigError(fmt::format("loss.budget is {}; a per-capita training budget must be > 0", budget));
  const at::Tensor r = r_hat.detach().to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor c = c_hat.detach().to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor t = b.t.to(at::kCPU).contiguous();
  const at::Tensor u = ipw.to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor yr = b.y_r.to(at::kCPU, at::kDouble).contiguous(), yc = b.y_c.to(at::kCPU, at::kDouble).contiguous();
  const int64_t n = r.size(0), M = r.size(1);
  const double* R = r.data_ptr<double>();
  const double* C = c.data_ptr<double>();
  const int64_t* T = t.data_ptr<int64_t>();
  const double* U = u.data_ptr<double>();
  const double* YR = yr.data_ptr<double>();
  const double* YC = yc.data_ptr<double>();
  std::vector<double> hi_v{0.0};
  for (int64_t i = 0; i < n; ++i)  // rows with u_i = 0 (padding) never count, so they must not move the bracket either
    for (int64_t j = 0; j < M && U[i] > 0; ++j)
      if (C[i * M + j] > 0) hi_v[0] = std::max(hi_v[0], R[i * M + j] / C[i * M + j]);
  if (ctx.reduce_max) ctx.reduce_max(hi_v);
  const double N = batch_total(b, ctx);
  // One pass: the IPW per-capita revenue and cost of the dual policy at each candidate λ (solver/ksection.h's row
  // function, the one the CUDA kernel runs), one reduction of the 2K sums across ranks.
  auto eval = [&](const std::vector<double>& lam, std::vector<double>& rev, std::vector<double>& cost) {
    const int K = int(lam.size());
    std::vector<double> sums(2 * K, 0.0);
    for (int64_t i = 0; i < n; ++i)
      solver::ksection_row(R + i * M, C + i * M, int(M), int(T[i]), U[i], YR[i], YC[i], lam.data(), K, sums.data(),
                           sums.data() + K);
    if (ctx.reduce_sum) ctx.reduce_sum(sums);
    for (int k = 0; k < K; ++k) rev[k] = N > 0 ? sums[k] / N : 0.0, cost[k] = N > 0 ? sums[K + k] / N : 0.0;
  };
  const int k = k_candidates < 1 ? 1 : k_candidates;
  const solver::KSectionResult res =
      solver::ksection_search(eval, hi_v[0], budget, k, solver::ksection_passes(k, max_iter), eps_rel);
  LambdaSearch out;
  out.lambda = res.lambda, out.cost = res.cost, out.revenue = res.revenue, out.matched = res.matched;
  out.iterations = res.passes - 1;
  return out;
}

std::vector<double> read_primal_budgets(const Config& s, const std::string& loss_name) {
  if (!s.has("budgets"))
    throw ConfigError(fmt::format("loss.budgets is required for {}: the per-capita training budgets whose λ* the loss "
                                  "uses, e.g. budgets: [0.3]",
                                  loss_name));
  const auto budgets = s.get<std::vector<double>>("budgets", {});
  if (budgets.empty())
    throw ConfigError("loss.budgets is empty; give at least one per-capita training budget, e.g. budgets: [0.3]");
  for (double b : budgets)
    if (!(b > 0) || !std::isfinite(b))
      throw ConfigError(fmt::format("loss.budgets holds {}; every per-capita budget must be a finite number > 0", b));
  return budgets;
}

double read_node_tau(const Config& s) {
  const double tau = s.get<double>("tau", 1.0);
  if (!(tau > 0) || !std::isfinite(tau))
    throw ConfigError(fmt::format(
        "loss.tau is {}; the softmax node's temperature must be a finite number > 0 (e.g. tau: 1)", tau));
  return tau;
}

std::vector<double> primal_lambdas(const std::vector<double>& budgets, const std::string& source,
                                   const std::string& loss_name, const model::Batch& b, const model::Scores& s,
                                   const LossContext& ctx) {
  if (source == "sample") {
    if (ctx.sample_lambda.size() != budgets.size())
      throw DataError(fmt::format("loss {} (lambda_source: sample): LossContext::sample_lambda holds {} values for {} "
                                  "training budgets; the trainer must find λ* on its RCT sample at the start of each "
                                  "epoch (or use lambda_source: batch)",
                                  loss_name, ctx.sample_lambda.size(), budgets.size()));
    for (double l : ctx.sample_lambda)
      if (!(l >= 0) || !std::isfinite(l))
        throw DataError(fmt::format("loss {}: LossContext::sample_lambda holds {}; λ* must be finite and >= 0",
                                    loss_name, l));
    return ctx.sample_lambda;
  }
  std::vector<double> out;
  const at::Tensor ipw = row_weights(b, s, ctx, true);
  for (double budget : budgets) out.push_back(primal_lambda(s.r_hat, s.c_hat, b, ipw, ctx, budget).lambda);
  return out;
}

}  // namespace dfcl::loss
