// \brief factual_terms: gather the factual arm's prediction and apply MSE or BCE; shape checks.
#include "loss/factual_terms.h"

#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::gather, at::log

#include "core/config.h"  // for Config
#include "core/error.h"   // for ConfigError, DataError

namespace dfcl::loss {

namespace {
OutcomeLoss read_outcome_loss(const Config& s, const std::string& key) {
  const std::string v = s.get<std::string>(key, "mse");
  if (v == "mse") return OutcomeLoss::kMse;
  if (v == "bce") return OutcomeLoss::kBce;
  throw ConfigError(
      fmt::format("loss.{}: unknown outcome loss '{}' ({}); use mse (real-valued outcomes) or bce "
                  "(0/1 outcomes with a sigmoid output)",
                  key, v, s.origin(key)));
}
}  // namespace

FactualTerms FactualTerms::from(const Config& s) {
  FactualTerms f;
  f.revenue = read_outcome_loss(s, "revenue_loss");
  f.cost = read_outcome_loss(s, "cost_loss");
  f.revenue_weight = s.get<double>("revenue_weight", f.revenue_weight);
  f.cost_weight = s.get<double>("cost_weight", f.cost_weight);
  if (!(f.revenue_weight >= 0) || !(f.cost_weight >= 0) || f.revenue_weight + f.cost_weight <= 0)
    throw ConfigError(fmt::format("loss.revenue_weight = {}, loss.cost_weight = {}: both must be >= 0 and not both 0",
                                  f.revenue_weight, f.cost_weight));
  return f;
}

at::Tensor FactualTerms::per_row(const model::Batch& b, const model::Scores& s) const {
  at::Tensor out;
  if (revenue_weight > 0) out = revenue_weight * factual_terms(s.r_hat, b.t, b.y_r, revenue, "revenue");
  if (cost_weight > 0) {
    at::Tensor c = cost_weight * factual_terms(s.c_hat, b.t, b.y_c, cost, "cost");
    out = out.defined() ? out + c : c;
  }
  return out;
}

void check_shapes(const model::Batch& b, const model::Scores& s) {
  const int64_t B = b.rows();
  for (const auto* p : {&s.r_hat, &s.c_hat}) {
    const char* name = p == &s.r_hat ? "r_hat" : "c_hat";
    if (!p->defined() || p->dim() != 2 || p->size(0) != B || p->size(1) != s.r_hat.size(1))
      throw DataError(
          fmt::format("loss: {} must be B x M with B = {} batch rows and the same M for r_hat and c_hat", name, B));
  }
  for (const auto* p : {&b.y_r, &b.y_c, &b.weight})
    if (!p->defined() || p->dim() != 1 || p->size(0) != B)
      throw DataError(fmt::format("loss: batch columns y_r, y_c, weight must have {} rows like t", B));
  if (B > 0) {
    const int64_t lo = b.t.min().item<int64_t>(), hi = b.t.max().item<int64_t>();
    if (lo < 0 || hi >= s.r_hat.size(1))
      throw DataError(
          fmt::format("loss: batch arm {} lies outside [0, {}) of the scores; the model and the data "
                      "disagree on the number of arms",
                      lo < 0 ? lo : hi, s.r_hat.size(1)));
  }
}

at::Tensor factual_terms(const at::Tensor& pred, const at::Tensor& t, const at::Tensor& y_in, OutcomeLoss kind,
                         const char* outcome) {
  at::Tensor p = pred.gather(1, t.unsqueeze(1)).squeeze(1);
  at::Tensor y = y_in.to(pred.scalar_type());
  if (kind == OutcomeLoss::kMse) return (y - p).pow(2);
  if (y.numel() > 0 && (y.lt(0).logical_or(y.gt(1))).any().item<bool>())
    throw DataError(
        fmt::format("loss: {} labels must lie in [0, 1] for bce; use mse for real-valued outcomes", outcome));
  // Clamp the probabilities, not the logs: a saturated sigmoid (p == 0 or 1 in float) then gets a zero
  // gradient instead of 0 * inf = NaN. log(1e-30) = -69.1 bounds each term.
  constexpr double kTiny = 1e-30;
  return -(y * at::log(p.clamp_min(kTiny)) + (1 - y) * at::log((1 - p).clamp_min(kTiny)));
}

}  // namespace dfcl::loss
