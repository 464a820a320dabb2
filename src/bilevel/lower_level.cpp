// \brief The lower level's masked MSE, its score gradient and the mixed term's gate cotangent (lower_level.h).
#include "bilevel/lower_level.h"

#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::cat, at::one_hot, torch::NoGradGuard

#include "core/error.h"  // for ConfigError

namespace dfcl::bilevel {

LowerMode lower_mode_from(const std::string& name) {
  if (name == "counterfactual") return LowerMode::kCounterfactual;
  if (name == "factual_weights") return LowerMode::kFactualWeights;
  throw ConfigError(fmt::format("bilevel.labels is '{}'; use counterfactual (bridge-gated pseudo-labels on the "
                                "counterfactual cells, the paper's Bi-DFCL) or factual_weights (the ablation without "
                                "counterfactual labels: per-sample bridge weights on the factual cells)",
                                name));
}

std::string to_string(LowerMode mode) {
  return mode == LowerMode::kCounterfactual ? "counterfactual" : "factual_weights";
}

at::Tensor cells(const at::Tensor& r_hat, const at::Tensor& c_hat) { return at::cat({r_hat, c_hat}, 1); }

LowerTargets lower_targets(LowerMode mode, const model::Batch& b, const LowerInputs& in) {
  const int64_t M = in.teacher.size(1) / 2;
  const auto o = in.teacher.options();
  LowerTargets t;
  const at::Tensor onehot = at::one_hot(b.t, M).to(o);         // B x M
  t.factual = at::cat({onehot, onehot}, 1);                      // B x 2M
  const at::Tensor labels = at::cat({b.y_r.to(o).unsqueeze(1).expand({-1, M}), b.y_c.to(o).unsqueeze(1).expand({-1, M})}, 1);
  const at::Tensor w = t.weight = b.weight.to(o).unsqueeze(1);   // B x 1
  if (mode == LowerMode::kCounterfactual) {
    const at::Tensor pseudo = in.gates * in.teacher + (1 - in.gates) * in.snapshot;
    t.y = t.factual * labels + (1 - t.factual) * pseudo;
    t.omega = w.expand({-1, 2 * M});
  } else {
    t.y = t.factual * labels;
    t.omega = 2 * in.gates * t.factual * w;
  }
  return t;
}

at::Tensor lower_loss(const at::Tensor& yhat, const LowerTargets& t, double kappa) {
  const at::Tensor e = yhat - t.y;
  return kappa * (t.omega * e * e).sum();
}

double lower_value_and_grad(const at::Tensor& yhat, const LowerTargets& t, double kappa, at::Tensor& d_r,
                            at::Tensor& d_c) {
  torch::NoGradGuard no_grad;
  const int64_t M = yhat.size(1) / 2;
  const at::Tensor we = t.omega * (yhat - t.y);
  const double value = kappa * (we * (yhat - t.y)).sum().item<double>();
  const at::Tensor d = (2 * kappa) * we;
  d_r = d.narrow(1, 0, M).contiguous();
  d_c = d.narrow(1, M, M).contiguous();
  return value;
}

at::Tensor gate_cotangent(LowerMode mode, const at::Tensor& yhat, const LowerTargets& t, const LowerInputs& in,
                          const at::Tensor& u, double kappa) {
  torch::NoGradGuard no_grad;
  if (mode == LowerMode::kCounterfactual) return (2 * kappa) * t.omega * u * (in.teacher - in.snapshot) * (1 - t.factual);
  (void)in;  // ω = 2 w f weight, so ∂ω/∂w = 2 f weight
  return (-4 * kappa) * t.weight * t.factual * (yhat - t.y) * u;
}

}  // namespace dfcl::bilevel
