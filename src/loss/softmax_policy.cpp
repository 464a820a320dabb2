// \brief The softmax-policy decision losses' shared evaluation: autograd value, closed-form gradient, α · L_PL.
#include "loss/softmax_policy.h"

#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::log_softmax, at::softmax, torch::NoGradGuard

#include <cmath>  // for std::isfinite

#include "core/config.h"         // for Config
#include "core/error.h"          // for ConfigError
#include "loss/cuda_path.h"      // for cuda_softmax_term
#include "loss/factual_terms.h"  // for check_shapes
#include "loss/rows.h"           // for rows::softmax_policy_row
#include "solver/hull.h"         // for kMaxArms

namespace dfcl::loss {

namespace {
// d zeroed and shaped like `like` (its buffer reused when the shape, dtype and device already fit).
void zero_like(at::Tensor& d, const at::Tensor& like) {
  if (d.defined() && d.sizes() == like.sizes() && d.dtype() == like.dtype() && d.device() == like.device() &&
      d.is_contiguous())
    d.zero_();
  else
    d = at::zeros(like.sizes(), like.options().memory_format(at::MemoryFormat::Contiguous));
}
}  // namespace

double SoftmaxPolicyLoss::read_tau(const Config& s, double fallback) {
  const double tau = s.get<double>("tau", fallback);
  if (!(tau > 0) || !std::isfinite(tau))
    throw ConfigError(fmt::format("loss.tau is {}; the softmax temperature must be a finite number > 0 (small τ: "
                                  "close to the argmax policy, large τ: smooth; e.g. tau: 1)",
                                  tau));
  return tau;
}

at::Tensor SoftmaxPolicyLoss::scaled_row_weights(const model::Batch& b, const model::Scores& s,
                                                 const LossContext& ctx) const {
  torch::NoGradGuard no_grad;
  const double n = batch_total(b, ctx);
  at::Tensor u = row_weights(b, s, ctx, settings_.ipw);
  // N = 0: a batch of padding only; every gain is 0 (not 0/0), so the loss is 0 with a zero gradient.
  return n > 0 ? u.div(n) : at::zeros_like(u);
}

std::vector<SoftmaxPolicyLoss::Term> SoftmaxPolicyLoss::dual_terms(const model::Batch& b, const model::Scores& s,
                                                                   const LossContext& ctx) const {
  torch::NoGradGuard no_grad;
  const at::Tensor u = scaled_row_weights(b, s, ctx);
  const at::Tensor yr = b.y_r.to(u.scalar_type()), yc = b.y_c.to(u.scalar_type());
  std::vector<Term> out;
  for (double lam : settings_.lambdas) out.push_back(Term{lam, u * (yr - lam * yc)});
  return out;
}

at::Tensor SoftmaxPolicyLoss::compute(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const {
  check_shapes(b, s);
  const std::vector<Term> ts = terms(b, s, ctx);
  const at::Tensor t1 = b.t.unsqueeze(1);
  at::Tensor loss;
  for (const Term& term : ts) {
    // log p_t from log_softmax (stable for any τ), then p_t = exp(log p_t).
    const at::Tensor a = (s.r_hat - term.lambda * settings_.decision_cost_scores(s.c_hat)) / tau_;
    const at::Tensor p_t = at::log_softmax(a, 1).gather(1, t1).squeeze(1).exp();
    const at::Tensor l = -(term.gain * p_t).sum();
    loss = loss.defined() ? loss + l : l;
  }
  if (settings_.alpha > 0) {
    const at::Tensor pl = settings_.alpha * PredictionTerm(settings_.prediction).compute(b, s, ctx);
    loss = loss.defined() ? loss + pl : pl;
  }
  return loss;
}

namespace {
// The CPU fused path: one pass over the rows per term through loss/rows.h's softmax_policy_row (the CUDA kernel's row
// function). d_r, d_c are zeroed, contiguous B x M; cost_grad false leaves d_c at 0 (cost_head: calibrated).
template <class T>
double softmax_terms_cpu(const at::Tensor& r_hat, const at::Tensor& c_hat, const at::Tensor& t_in, double lambda,
                         double tau, const at::Tensor& gain_in, bool cost_grad, at::Tensor& d_r, at::Tensor& d_c) {
  const at::Tensor r_c = r_hat.stride(1) == 1 ? r_hat : r_hat.contiguous();
  const at::Tensor c_c = c_hat.stride(1) == 1 ? c_hat : c_hat.contiguous();
  const at::Tensor t_c = t_in.contiguous(), g_c = gain_in.contiguous();
  const int64_t B = r_c.size(0), rs = r_c.stride(0), cs = c_c.stride(0);
  const int M = int(r_c.size(1));
  const T *r = r_c.data_ptr<T>(), *c = c_c.data_ptr<T>(), *g = g_c.data_ptr<T>();
  const int64_t* t = t_c.data_ptr<int64_t>();
  T *dr = d_r.data_ptr<T>(), *dc = cost_grad ? d_c.data_ptr<T>() : nullptr;
  double value = 0;
  for (int64_t i = 0; i < B; ++i) {
    if (g[i] == 0) continue;  // padding rows and zero gains: value and gradient 0
    value += rows::softmax_policy_row<T>(r + i * rs, c + i * cs, 1, M, int(t[i]), T(lambda), T(tau), g[i], dr + i * M,
                                         dc ? dc + i * M : nullptr);
  }
  return value;
}
}  // namespace

bool SoftmaxPolicyLoss::value_and_grad(const model::Batch& b, const model::Scores& s, const LossContext& ctx,
                                       at::Tensor& value, at::Tensor& d_r, at::Tensor& d_c) const {
  check_shapes(b, s);
  const std::vector<Term> ts = terms(b, s, ctx);
  torch::NoGradGuard no_grad;
  zero_like(d_r, s.r_hat), zero_like(d_c, s.c_hat);
  const at::ScalarType dt = s.r_hat.scalar_type();
  const bool cpu = s.r_hat.device().is_cpu() && (dt == at::kFloat || dt == at::kDouble) &&
                   s.c_hat.scalar_type() == dt && s.r_hat.size(1) <= solver::kMaxArms;
  if (cpu) {
    double v = 0;
    for (const Term& term : ts) {
      const at::Tensor g = term.gain.to(dt);
      const bool cg = settings_.decision_cost;
      v += dt == at::kFloat ? softmax_terms_cpu<float>(s.r_hat, s.c_hat, b.t, term.lambda, tau_, g, cg, d_r, d_c)
                            : softmax_terms_cpu<double>(s.r_hat, s.c_hat, b.t, term.lambda, tau_, g, cg, d_r, d_c);
    }
    value = at::scalar_tensor(v, s.r_hat.options());
  } else if (at::Tensor acc = at::zeros({1}, s.r_hat.options().dtype(at::kDouble));
             s.r_hat.is_cuda() && !ts.empty() &&
             cuda_softmax_term(s.r_hat, s.c_hat, b.t, ts[0].lambda, tau_, ts[0].gain, settings_.decision_cost, d_r, d_c,
                               acc)) {
    // The GPU: the fused kernel per term (loss/cuda_path.h), the value summed on the device (no host sync).
    for (size_t k = 1; k < ts.size(); ++k)
      cuda_softmax_term(s.r_hat, s.c_hat, b.t, ts[k].lambda, tau_, ts[k].gain, settings_.decision_cost, d_r, d_c, acc);
    value = acc.squeeze(0).to(s.r_hat.scalar_type());
  } else {
    value = at::zeros({}, s.r_hat.options());
    const at::Tensor t1 = b.t.unsqueeze(1);
    for (const Term& term : ts) {
      const at::Tensor p = at::softmax((s.r_hat - term.lambda * s.c_hat) / tau_, 1);
      const at::Tensor gp = term.gain.unsqueeze(1) * p.gather(1, t1);  // g_i p_t, B x 1
      value.sub_(gp.sum());
      // dL/da_j = g_i p_t p_j − g_i p_t δ_jt
      at::Tensor da = p.mul_(gp);
      da.scatter_add_(1, t1, gp.neg());
      d_r.add_(da, 1.0 / tau_);
      d_c.add_(da, -term.lambda / tau_);
    }
  }
  settings_.drop_decision_cost_grad(d_c);
  if (settings_.alpha > 0) PredictionTerm(settings_.prediction).accumulate(b, s, ctx, settings_.alpha, value, d_r, d_c);
  return true;
}

}  // namespace dfcl::loss
