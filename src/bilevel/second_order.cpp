// \brief Hessian-vector products, the target's JVP and the mixed term (second_order.h).
#include "bilevel/second_order.h"

#include <torch/torch.h>  // for torch::autograd::grad, torch::NoGradGuard

#include <utility>  // for std::move

#include "model/uplift_net.h"  // for UpliftNet, ForwardCache

namespace dfcl::bilevel {

namespace {
at::Tensor grad1(const at::Tensor& out, const at::Tensor& in, const at::Tensor& cot, bool create = false) {
  return torch::autograd::grad({out}, {in}, {cot}, /*retain_graph=*/true, /*create_graph=*/create)[0];
}
}  // namespace

LowerCurvature::LowerCurvature(const model::UpliftNet& net, const at::Tensor& theta, const at::Tensor& x,
                               LowerTargets targets, double kappa)
    : targets_(std::move(targets)), kappa_(kappa) {
  torch::AutoGradMode on(true);
  theta_ = theta.detach().clone().requires_grad_(true);
  const model::Scores s = net.forward(theta_, x);
  yhat_ = cells(s.r_hat, s.c_hat);
  LowerTargets fixed{targets_.y.detach(), targets_.omega.detach(), targets_.factual, targets_.weight};
  const at::Tensor L = lower_loss(yhat_, fixed, kappa_);
  grad_ = torch::autograd::grad({L}, {theta_}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
}

at::Tensor LowerCurvature::hvp(const at::Tensor& v) const {
  torch::AutoGradMode on(true);
  return grad1(grad_, theta_, v.to(grad_.options())).detach();
}

at::Tensor LowerCurvature::jvp(const at::Tensor& v) const {
  torch::AutoGradMode on(true);
  if (!vjp_.defined()) {
    dummy_ = at::zeros_like(yhat_).detach().requires_grad_(true);
    vjp_ = grad1(yhat_, theta_, dummy_, /*create=*/true);  // Jᵀ dummy, linear in dummy
  }
  return grad1(vjp_, dummy_, v.to(vjp_.options())).detach();
}

at::Tensor LowerCurvature::gauss_newton(const at::Tensor& v) const {
  torch::AutoGradMode on(true);
  const at::Tensor u = jvp(v);
  return grad1(yhat_, theta_, ((2 * kappa_) * targets_.omega.detach() * u).to(yhat_.options())).detach();
}

at::Tensor bridge_gates(const model::UpliftNet& bridge, const at::Tensor& phi, const at::Tensor& x) {
  torch::NoGradGuard no_grad;
  const model::Scores s = bridge.forward(phi, x);
  return cells(s.r_hat, s.c_hat);
}

at::Tensor mixed_term(const model::UpliftNet& bridge, const at::Tensor& phi, const at::Tensor& x, LowerMode mode,
                      const LowerCurvature& lower, const LowerInputs& in, const at::Tensor& v, double kappa,
                      model::ForwardCache* cache) {
  const at::Tensor u = lower.jvp(v);
  const at::Tensor q = gate_cotangent(mode, lower.yhat(), lower.targets(), in, u, kappa).to(phi.scalar_type());
  const int64_t M = q.size(1) / 2;
  if (cache) {
    torch::NoGradGuard no_grad;
    bridge.forward_train(phi, x, *cache);
    at::Tensor g;
    bridge.backward(phi, *cache, q.narrow(1, 0, M).contiguous(), q.narrow(1, M, M).contiguous(), g);
    return g;
  }
  torch::AutoGradMode on(true);
  const at::Tensor ph = phi.detach().requires_grad_(true);
  const model::Scores s = bridge.forward(ph, x);
  return grad1(cells(s.r_hat, s.c_hat), ph, q).detach();
}

at::Tensor mixed_term_autograd(const model::UpliftNet& target, const at::Tensor& theta, const model::UpliftNet& bridge,
                               const at::Tensor& phi, const model::Batch& batch, LowerMode mode,
                               const at::Tensor& teacher, const at::Tensor& snapshot, const at::Tensor& v,
                               double kappa) {
  torch::AutoGradMode on(true);
  const at::Tensor ph = phi.detach().requires_grad_(true);
  const model::Scores w = bridge.forward(ph, batch.x);
  const LowerInputs in{teacher.detach(), snapshot.detach(), cells(w.r_hat, w.c_hat)};
  const LowerTargets t = lower_targets(mode, batch, in);
  const at::Tensor th = theta.detach().requires_grad_(true);
  const model::Scores s = target.forward(th, batch.x);
  const at::Tensor L = lower_loss(cells(s.r_hat, s.c_hat), t, kappa);
  const at::Tensor g = torch::autograd::grad({L}, {th}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  return (-torch::autograd::grad({g}, {ph}, {v.to(g.options())}, /*retain_graph=*/false)[0]).detach();
}

}  // namespace dfcl::bilevel
