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
    : net_(net),
      theta_(theta.detach()),
      x_(x.detach()),
      cache_(std::make_unique<model::ForwardCache>()),
      targets_{targets.y.detach(), targets.omega.detach(), targets.factual, targets.weight},
      kappa_(kappa) {
  const model::Scores s = net_.forward_train(theta_, x_, *cache_);
  yhat_ = cells(s.r_hat, s.c_hat).clone();
}

LowerCurvature::~LowerCurvature() = default;

at::Tensor LowerCurvature::gradient() const {
  at::Tensor d_r, d_c, g;
  lower_value_and_grad(yhat_, targets_, kappa_, d_r, d_c);
  net_.backward(theta_, *cache_, d_r, d_c, g);
  return g;
}

at::Tensor LowerCurvature::hvp(const at::Tensor& v) const {
  torch::AutoGradMode on(true);
  if (!grad_.defined()) {
    leaf_ = theta_.clone().requires_grad_(true);
    const model::Scores s = net_.forward(leaf_, x_);
    const at::Tensor L = lower_loss(cells(s.r_hat, s.c_hat), targets_, kappa_);
    grad_ = torch::autograd::grad({L}, {leaf_}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  }
  return grad1(grad_, leaf_, v.to(grad_.options())).detach();
}

at::Tensor LowerCurvature::jvp(const at::Tensor& v) const {
  const model::Scores t = net_.jvp(theta_, x_, v.to(theta_.options()));
  return cells(t.r_hat, t.c_hat);
}

at::Tensor LowerCurvature::gauss_newton(const at::Tensor& v) const {
  torch::NoGradGuard no_grad;
  const at::Tensor q = (2 * kappa_) * targets_.omega * jvp(v);
  const int64_t M = q.size(1) / 2;
  at::Tensor g;
  net_.backward(theta_, *cache_, q.narrow(1, 0, M).contiguous(), q.narrow(1, M, M).contiguous(), g);
  return g;
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
