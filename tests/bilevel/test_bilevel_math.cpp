// \brief Bi-DFCL's math in float64 on tiny nets: CG (random SPD systems, negative curvature, damping, warm start),
// the exact HVP against finite differences of gradients, the Gauss–Newton HVP against the dense JᵀΩJ (PSD), the
// closed-form mixed term against double backward, and the implicit hypergradient against dense Hessians and (for a
// linear target, where the lower level is strictly convex) against finite differences of the upper loss in φ.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>   // for std::abs
#include <vector>  // for std::vector

#include "bilevel/cg.h"
#include "bilevel/lower_level.h"
#include "bilevel/second_order.h"
#include "core/config.h"       // for Config
#include "loss/loss.h"         // for make_loss, LossContext
#include "model/batch.h"       // for Batch
#include "model/uplift_net.h"  // for UpliftNet

namespace dfcl::bilevel {
namespace {

using model::UpliftNet;
using model::UpliftNetConfig;
const auto kD = at::TensorOptions().dtype(at::kDouble);

double rel(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-300, b.abs().max().item<double>());
}

UpliftNetConfig net_config(int F, int M, std::vector<int> trunk, const std::string& out) {
  UpliftNetConfig c;
  c.features = F, c.arms = M, c.trunk = std::move(trunk), c.head = {};
  c.activation = "tanh";  // smooth: finite differences of gradients are exact to O(ε²)
  c.revenue_output = c.cost_output = out;
  return c;
}

model::Batch make_batch(int64_t B, int F, int M, uint64_t seed) {
  torch::manual_seed(seed);
  model::Batch b;
  b.x = torch::randn({B, F}, kD);
  b.t = torch::randint(0, M, {B}, at::TensorOptions().dtype(at::kLong));
  b.y_r = torch::rand({B}, kD) * 3;
  b.y_c = torch::rand({B}, kD);
  b.weight = torch::ones({B}, kD);
  b.weight[0] = 0;  // a padding row must not count
  return b;
}

// ---------------------------------------------------------------------------------------------------------- CG
TEST(Cg, SolvesRandomSpdSystemsToItsTolerance) {
  for (int64_t n : {5, 30, 80}) {
    torch::manual_seed(n);
    const at::Tensor Q = torch::randn({n, n}, kD);
    const at::Tensor A = Q.mm(Q.t()) + 0.5 * torch::eye(n, kD);
    const at::Tensor b = torch::randn({n}, kD);
    at::Tensor x;
    CgOptions o;
    o.max_iter = int(4 * n), o.tol = 1e-10;
    const CgStats s = conjugate_gradient([&](const at::Tensor& p) { return A.mv(p); }, b, x, o);
    EXPECT_TRUE(s.converged) << n;
    EXPECT_LE((b - A.mv(x)).norm().item<double>() / b.norm().item<double>(), 1e-9) << n;
    EXPECT_LT(rel(x, at::linalg_solve(A, b.unsqueeze(1)).squeeze(1)), 1e-7) << n;
    // a looser tolerance stops earlier, with the true residual at that tolerance
    at::Tensor y;
    o.tol = 1e-3;
    const CgStats t = conjugate_gradient([&](const at::Tensor& p) { return A.mv(p); }, b, y, o);
    if (n > 5) EXPECT_LT(t.iterations, s.iterations);
    EXPECT_LE((b - A.mv(y)).norm().item<double>() / b.norm().item<double>(), 1.0001e-3);
  }
}

TEST(Cg, StopsOnNegativeCurvatureWithTheBestIterate) {
  const at::Tensor A = torch::diag(torch::tensor({2.0, 1.0, -1.0}, kD));
  const at::Tensor b = torch::tensor({1.0, 0.0, 1.0}, kD);
  at::Tensor x;
  const CgStats s = conjugate_gradient([&](const at::Tensor& p) { return A.mv(p); }, b, x, CgOptions{});
  EXPECT_TRUE(s.negative_curvature);
  EXPECT_FALSE(s.converged);
  // the first direction b has curvature 2 − 1 = 1 > 0 (one step), the next conjugate one has negative curvature
  EXPECT_EQ(s.iterations, 2);
  EXPECT_TRUE(torch::isfinite(x).all().item<bool>());
  const double r = (b - A.mv(x)).norm().item<double>() / b.norm().item<double>();
  EXPECT_NEAR(r, s.residual, 1e-12);
  EXPECT_LE(s.residual, 1.0);
}

TEST(Cg, DampingSolvesTheShiftedSystem) {
  torch::manual_seed(3);
  const int64_t n = 20;
  const at::Tensor Q = torch::randn({n, n}, kD);
  const at::Tensor A = Q.mm(Q.t());  // singular-ish
  const at::Tensor b = torch::randn({n}, kD);
  for (double d : {1e-2, 1.0, 100.0}) {
    at::Tensor x;
    CgOptions o;
    o.max_iter = 200, o.tol = 1e-12, o.damping = d;
    const CgStats s = conjugate_gradient([&](const at::Tensor& p) { return A.mv(p); }, b, x, o);
    EXPECT_EQ(s.damping, d);
    EXPECT_LT(rel(x, at::linalg_solve(A + d * torch::eye(n, kD), b.unsqueeze(1)).squeeze(1)), 1e-8) << d;
  }
  // large damping: x -> b / δ (the explicit, gradient-step limit)
  at::Tensor x;
  CgOptions o;
  o.damping = 1e8, o.tol = 1e-14;
  conjugate_gradient([&](const at::Tensor& p) { return A.mv(p); }, b, x, o);
  EXPECT_LT(rel(x * 1e8, b), 1e-5);
  // an indefinite matrix made positive definite by damping converges instead of stopping
  const at::Tensor D = torch::diag(torch::tensor({2.0, 1.0, -1.0}, kD));
  at::Tensor z;
  o = CgOptions{};
  o.damping = 2.0, o.tol = 1e-12;
  const CgStats s = conjugate_gradient([&](const at::Tensor& p) { return D.mv(p); }, torch::ones({3}, kD), z, o);
  EXPECT_FALSE(s.negative_curvature);
  EXPECT_TRUE(s.converged);
  // relative damping's scale: the curvature along b
  EXPECT_NEAR(curvature_scale([&](const at::Tensor& p) { return A.mv(p); }, b),
              b.dot(A.mv(b)).item<double>() / b.dot(b).item<double>(), 1e-12);
}

TEST(Cg, WarmStartHelpsAndABadOneIsDropped) {
  torch::manual_seed(5);
  const int64_t n = 40;
  const at::Tensor Q = torch::randn({n, n}, kD);
  const at::Tensor A = Q.mm(Q.t()) + torch::eye(n, kD);
  const at::Tensor b = torch::randn({n}, kD);
  const MatVec mv = [&](const at::Tensor& p) { return A.mv(p); };
  CgOptions o;
  o.max_iter = 500, o.tol = 1e-8;
  at::Tensor cold;
  const CgStats c = conjugate_gradient(mv, b, cold, o);
  at::Tensor warm = cold + 1e-6 * torch::randn({n}, kD);
  const CgStats w = conjugate_gradient(mv, b, warm, o);
  EXPECT_LT(w.iterations, c.iterations);
  EXPECT_LT(w.initial_residual, 1e-3);
  at::Tensor bad = 1e6 * torch::randn({n}, kD);
  const CgStats d = conjugate_gradient(mv, b, bad, o);
  EXPECT_TRUE(d.converged);
  EXPECT_GT(d.initial_residual, 1.0);  // measured, then dropped for zero
  EXPECT_LT(rel(bad, cold), 1e-6);
}

// ------------------------------------------------------------------------------- the lower level on a tiny batch
struct Tiny {
  int F = 3, M = 2;
  int64_t B = 40;
  double kappa = 0;
  std::unique_ptr<UpliftNet> target, bridge, teacher;
  model::Batch batch;
  at::Tensor teacher_out, snapshot;
  Tiny(std::vector<int> trunk, uint64_t seed) {
    target = std::make_unique<UpliftNet>(net_config(F, M, trunk, "identity"), seed, at::kDouble);
    bridge = std::make_unique<UpliftNet>(net_config(F, M, {3}, "sigmoid"), seed + 1, at::kDouble);
    teacher = std::make_unique<UpliftNet>(net_config(F, M, {4}, "identity"), seed + 2, at::kDouble);
    batch = make_batch(B, F, M, seed);
    kappa = 1.0 / (double(B - 1) * M);
    torch::NoGradGuard g;
    const auto t = teacher->forward(teacher->flat(), batch.x);
    teacher_out = cells(t.r_hat, t.c_hat) + 0.5;
    const auto s = target->forward(target->flat(), batch.x);
    snapshot = cells(s.r_hat, s.c_hat);
  }
  LowerInputs inputs(const at::Tensor& phi) const {
    return LowerInputs{teacher_out, snapshot, bridge_gates(*bridge, phi, batch.x)};
  }
  LowerTargets targets(LowerMode m, const at::Tensor& phi) const { return lower_targets(m, batch, inputs(phi)); }
  at::Tensor grad_at(const at::Tensor& theta, const LowerTargets& t) const {
    torch::AutoGradMode on(true);
    const at::Tensor th = theta.detach().requires_grad_(true);
    const auto s = target->forward(th, batch.x);
    return torch::autograd::grad({lower_loss(cells(s.r_hat, s.c_hat), t, kappa)}, {th})[0].detach();
  }
};

TEST(LowerLevel, ClosedFormScoreGradientMatchesAutograd) {
  for (LowerMode m : {LowerMode::kCounterfactual, LowerMode::kFactualWeights}) {
    Tiny k({4}, 1);
    const LowerTargets t = k.targets(m, k.bridge->flat().detach());
    torch::AutoGradMode on(true);
    const auto s = k.target->forward(k.target->flat().detach(), k.batch.x);
    const at::Tensor yhat = cells(s.r_hat, s.c_hat).detach().requires_grad_(true);
    const at::Tensor L = lower_loss(yhat, t, k.kappa);
    const at::Tensor g = torch::autograd::grad({L}, {yhat})[0];
    at::Tensor d_r, d_c;
    const double v = lower_value_and_grad(yhat.detach(), t, k.kappa, d_r, d_c);
    EXPECT_NEAR(v, L.item<double>(), 1e-14);
    EXPECT_LT(rel(at::cat({d_r, d_c}, 1), g), 1e-13);
    EXPECT_EQ(g[0].abs().sum().item<double>(), 0.0);  // padding row
  }
}

TEST(LowerLevel, PseudoLabelsMixTeacherAndSnapshotOnCounterfactualCellsOnly) {
  Tiny k({4}, 2);
  const LowerInputs in = k.inputs(k.bridge->flat().detach());
  const LowerTargets t = lower_targets(LowerMode::kCounterfactual, k.batch, in);
  for (int64_t i = 0; i < 5; ++i)
    for (int j = 0; j < 2 * k.M; ++j) {
      const bool factual = (j % k.M) == k.batch.t[i].item<int64_t>();
      const double label = j < k.M ? k.batch.y_r[i].item<double>() : k.batch.y_c[i].item<double>();
      const double w = in.gates[i][j].item<double>();
      const double want = factual ? label : w * in.teacher[i][j].item<double>() + (1 - w) * in.snapshot[i][j].item<double>();
      EXPECT_NEAR(t.y[i][j].item<double>(), want, 1e-14);
    }
}

TEST(SecondOrder, ExactHvpMatchesFiniteDifferencesOfGradients) {
  Tiny k({5}, 3);
  const LowerTargets t = k.targets(LowerMode::kCounterfactual, k.bridge->flat().detach());
  const at::Tensor theta = k.target->flat().detach();
  LowerCurvature c(*k.target, theta, k.batch.x, t, k.kappa);
  EXPECT_LT(rel(c.gradient(), k.grad_at(theta, t)), 1e-13);
  torch::manual_seed(9);
  for (int rep = 0; rep < 3; ++rep) {
    const at::Tensor v = torch::randn_like(theta);
    const double eps = 1e-5;
    const at::Tensor fd = (k.grad_at(theta + eps * v, t) - k.grad_at(theta - eps * v, t)) / (2 * eps);
    EXPECT_LT(rel(c.hvp(v), fd), 1e-6);
  }
}

TEST(SecondOrder, GaussNewtonIsTheDenseJtOmegaJAndPsd) {
  Tiny k({4}, 4);
  const LowerTargets t = k.targets(LowerMode::kCounterfactual, k.bridge->flat().detach());
  const at::Tensor theta = k.target->flat().detach();
  LowerCurvature c(*k.target, theta, k.batch.x, t, k.kappa);
  const int64_t P = theta.numel();
  // dense J (cells x P) by one JVP per parameter, against rows of autograd's Jacobian
  at::Tensor J = torch::zeros({k.B * 2 * k.M, P}, kD);
  for (int64_t p = 0; p < P; ++p) {
    at::Tensor e = torch::zeros({P}, kD);
    e[p] = 1;
    J.select(1, p).copy_(c.jvp(e).reshape({-1}));
  }
  {
    torch::AutoGradMode on(true);
    const at::Tensor th = theta.clone().requires_grad_(true);
    const auto s = k.target->forward(th, k.batch.x);
    const at::Tensor y = cells(s.r_hat, s.c_hat).reshape({-1});
    for (int64_t r : {int64_t(0), int64_t(7), k.B * 2 * k.M - 1})
      EXPECT_LT(rel(J[r], torch::autograd::grad({y[r]}, {th}, {}, true)[0]), 1e-13);
  }
  const at::Tensor G = 2 * k.kappa * J.t().mm(t.omega.reshape({-1, 1}) * J);
  EXPECT_GE(at::linalg_eigvalsh(G).min().item<double>(), -1e-12 * at::linalg_eigvalsh(G).max().item<double>());
  torch::manual_seed(11);
  for (int rep = 0; rep < 3; ++rep) {
    const at::Tensor v = torch::randn({P}, kD);
    const at::Tensor gv = c.gauss_newton(v);
    EXPECT_LT(rel(gv, G.mv(v)), 1e-12);
    EXPECT_GE(v.dot(gv).item<double>(), 0.0);
  }
}

TEST(SecondOrder, ClosedFormMixedTermEqualsDoubleBackward) {
  for (LowerMode m : {LowerMode::kCounterfactual, LowerMode::kFactualWeights}) {
    Tiny k({4}, 5);
    const at::Tensor phi = k.bridge->flat().detach();
    const LowerInputs in = k.inputs(phi);
    const LowerTargets t = lower_targets(m, k.batch, in);
    const at::Tensor theta = k.target->flat().detach() + 0.01;
    LowerCurvature c(*k.target, theta, k.batch.x, t, k.kappa);
    torch::manual_seed(13);
    const at::Tensor v = torch::randn_like(theta);
    const at::Tensor oracle =
        mixed_term_autograd(*k.target, theta, *k.bridge, phi, k.batch, m, k.teacher_out, k.snapshot, v, k.kappa);
    EXPECT_LT(rel(mixed_term(*k.bridge, phi, k.batch.x, m, c, in, v, k.kappa), oracle), 1e-12) << to_string(m);
    model::ForwardCache cache;  // the bridge's hand-written backward gives the same
    EXPECT_LT(rel(mixed_term(*k.bridge, phi, k.batch.x, m, c, in, v, k.kappa, &cache), oracle), 1e-12);
  }
}

// ------------------------------------------------------------------------------------------- the hypergradient
// Dense pieces: H = ∇²_θθ L and X = ∇²_θφ L (P x Q) by rows of double backward.
struct Dense {
  at::Tensor H, X;
};
Dense dense(const Tiny& k, LowerMode m, const at::Tensor& theta, const at::Tensor& phi) {
  torch::AutoGradMode on(true);
  const at::Tensor ph = phi.detach().clone().requires_grad_(true);
  const at::Tensor th = theta.detach().clone().requires_grad_(true);
  const auto w = k.bridge->forward(ph, k.batch.x);
  const LowerTargets t = lower_targets(m, k.batch, LowerInputs{k.teacher_out, k.snapshot, cells(w.r_hat, w.c_hat)});
  const auto s = k.target->forward(th, k.batch.x);
  const at::Tensor g = torch::autograd::grad({lower_loss(cells(s.r_hat, s.c_hat), t, k.kappa)}, {th}, {}, true, true)[0];
  const int64_t P = th.numel(), Q = ph.numel();
  Dense d{torch::zeros({P, P}, kD), torch::zeros({P, Q}, kD)};
  for (int64_t i = 0; i < P; ++i) {
    const auto r = torch::autograd::grad({g[i]}, {th, ph}, {}, true, false, /*allow_unused=*/true);
    d.H[i].copy_(r[0]);
    if (r[1].defined()) d.X[i].copy_(r[1]);
  }
  return d;
}

// The upper loss: PPL at a fixed λ (lambda_source: sample) on a trial batch: smooth in θ.
struct Upper {
  std::unique_ptr<loss::Loss> loss;
  model::Batch trial;
  loss::LossContext ctx;
  Upper(int F, int M) {
    loss = loss::make_loss(Config::from_string("loss: {name: ppl, budgets: [0.5], lambda_source: sample, alpha: 0, tau: 0.5, cost_head: decision}").sub("loss"));
    trial = make_batch(60, F, M, 77);
    ctx.arm_propensity = {0.5, 0.5};
    ctx.sample_lambda = {0.8};
  }
  at::Tensor value(const UpliftNet& net, const at::Tensor& theta) const {
    return loss->compute(trial, net.forward(theta, trial.x), ctx);
  }
  at::Tensor grad(const UpliftNet& net, const at::Tensor& theta) const {
    torch::AutoGradMode on(true);
    const at::Tensor th = theta.detach().clone().requires_grad_(true);
    return torch::autograd::grad({value(net, th)}, {th})[0].detach();
  }
};

TEST(Hypergradient, CgMatchesDenseHessiansToRelative1e6) {
  // an MLP target (tanh), damping on both sides; and a linear target (H positive definite) without damping
  for (bool linear : {false, true}) {
    Tiny k(linear ? std::vector<int>{} : std::vector<int>{4}, 21);
    Upper up(k.F, k.M);
    const LowerMode m = LowerMode::kCounterfactual;
    const at::Tensor phi = k.bridge->flat().detach(), theta = k.target->flat().detach();
    const LowerInputs in = k.inputs(phi);
    const LowerTargets t = lower_targets(m, k.batch, in);
    const Dense d = dense(k, m, theta, phi);
    const at::Tensor eig = at::linalg_eigvalsh(d.H);
    const double delta = linear ? 0.0 : std::max(0.0, -eig.min().item<double>()) + 0.1 * eig.abs().max().item<double>();
    const int64_t P = theta.numel();
    const at::Tensor A = d.H + delta * torch::eye(P, kD);
    ASSERT_GT(at::linalg_eigvalsh(A).min().item<double>(), 0.0);
    const at::Tensor g = up.grad(*k.target, theta);
    const at::Tensor want = -d.X.t().mv(at::linalg_solve(A, g.unsqueeze(1)).squeeze(1));
    LowerCurvature c(*k.target, theta, k.batch.x, t, k.kappa);
    at::Tensor v;
    CgOptions o;
    o.max_iter = int(10 * P), o.tol = 1e-13, o.damping = delta;
    const CgStats s = conjugate_gradient([&](const at::Tensor& p) { return c.hvp(p); }, g, v, o);
    EXPECT_TRUE(s.converged) << s.residual;
    const at::Tensor got = mixed_term(*k.bridge, phi, k.batch.x, m, c, in, v, k.kappa);
    EXPECT_LT(rel(got, want), 1e-6) << (linear ? "linear" : "mlp");
    EXPECT_GT(want.abs().max().item<double>(), 1e-8);  // a hypergradient that is not trivially zero
  }
}

TEST(Hypergradient, EqualsFiniteDifferencesOfTheUpperLossThroughTheLowerSolution) {
  // Linear target: L(θ) is quadratic and strictly convex, so θ*(φ) = θ0 − H⁻¹ ∇L(θ0) exactly (one Newton step).
  Tiny k({}, 31);
  Upper up(k.F, k.M);
  const LowerMode m = LowerMode::kCounterfactual;
  const at::Tensor theta0 = k.target->flat().detach();
  auto solve = [&](const at::Tensor& phi) {
    const LowerTargets t = k.targets(m, phi);
    const Dense d = dense(k, m, theta0, phi);
    return (theta0 - at::linalg_solve(d.H, k.grad_at(theta0, t).unsqueeze(1)).squeeze(1)).detach();
  };
  const at::Tensor phi = k.bridge->flat().detach();
  const at::Tensor ts = solve(phi);
  EXPECT_LT(k.grad_at(ts, k.targets(m, phi)).abs().max().item<double>(), 1e-12);  // stationary
  // implicit hypergradient at θ*(φ), through CG and the closed-form mixed term
  const LowerInputs in = k.inputs(phi);
  LowerCurvature c(*k.target, ts, k.batch.x, lower_targets(m, k.batch, in), k.kappa);
  at::Tensor v;
  CgOptions o;
  o.max_iter = 500, o.tol = 1e-14;
  conjugate_gradient([&](const at::Tensor& p) { return c.hvp(p); }, up.grad(*k.target, ts), v, o);
  const at::Tensor hg = mixed_term(*k.bridge, phi, k.batch.x, m, c, in, v, k.kappa);
  // central differences of F(φ) = L_up(θ*(φ)) in each coordinate of φ
  at::Tensor fd = torch::zeros_like(phi);
  const double eps = 1e-5;
  for (int64_t q = 0; q < phi.numel(); ++q) {
    at::Tensor e = torch::zeros_like(phi);
    e[q] = eps;
    fd[q] = (up.value(*k.target, solve(phi + e)) - up.value(*k.target, solve(phi - e))).item<double>() / (2 * eps);
  }
  EXPECT_LT(rel(hg, fd), 1e-4) << at::stack({hg, fd}, 1);  // cost_head: decision, so the loss gradient is its value's
  EXPECT_GT(fd.abs().max().item<double>(), 1e-6);
}

}  // namespace
}  // namespace dfcl::bilevel
