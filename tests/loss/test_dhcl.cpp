// \brief DHCL and DRP losses: values against the formulas by hand, gradients against finite differences (float64),
// the closed-form value_and_grad against autograd, padding and shard invariance, config errors; and convergence on
// synthetic RCT data with a known piecewise-constant ROI (binary, both forms; multi-arm steps), DRP's ranking AUCC.
#include <ATen/CPUGeneratorImpl.h>  // for at::CPUGeneratorImpl
#include <gtest/gtest.h>            // for TEST
#include <torch/torch.h>            // for torch::autograd::grad, torch::optim::Adam

#include <algorithm>  // for std::max
#include <chrono>     // for std::chrono::steady_clock
#include <cmath>      // for std::exp, std::log, std::abs
#include <cstdio>     // for std::printf
#include <memory>     // for std::unique_ptr
#include <string>     // for std::string
#include <vector>     // for std::vector

#include "core/config.h"              // for Config
#include "core/error.h"               // for ConfigError, DataError
#include "loss/dhcl.h"                // for DhclSettings
#include "loss/fixtures.h"  // for make, f64, rows
#include "loss/loss.h"                // for make_loss, loss_names, LossContext
#include "metrics/aucc.h"             // for Aucc
#include "model/batch.h"              // for Batch
#include "model/scores.h"             // for Scores
#include "model/uplift_net.h"         // for UpliftNet, ForwardCache
#include "model/uplift_net_config.h"  // for UpliftNetConfig

using namespace dfcl;
using loss::LossContext;
using model::Batch;
using model::Scores;

using namespace dfcl::loss_test;

namespace {


// B rows over M arms (every arm present), 0/1 outcomes; the last `padding` rows have weight 0.
Batch random_batch(int64_t B, int64_t M, uint64_t seed, int64_t padding = 0) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Batch b;
  b.x = at::randn({B, 2}, gen, f64());
  b.t = at::arange(B, at::kLong).remainder(M).index_select(0, at::randperm(B, gen, at::kLong));
  b.y_r = at::randint(2, {B}, gen, f64());
  b.y_c = at::randint(2, {B}, gen, f64());
  b.weight = at::ones({B}, f64());
  if (padding > 0) b.weight.narrow(0, B - padding, padding).zero_();
  return b;
}

Scores random_scores(int64_t B, int64_t M, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return Scores{at::randn({B, M}, gen, f64()), at::randn({B, M}, gen, f64())};
}


double softplus(double s) { return std::log1p(std::exp(s)); }

// Autograd gradient of loss.compute with respect to both score tables, against central differences; and the fused
// value_and_grad (when the loss has one) against both.
void check_gradient(const loss::Loss& L, const Batch& b, const Scores& s0, const LossContext& ctx, double tol) {
  Scores s{s0.r_hat.clone().requires_grad_(true), s0.c_hat.clone().requires_grad_(true)};
  at::Tensor value = L.compute(b, s, ctx);
  auto g = torch::autograd::grad({value}, {s.r_hat, s.c_hat}, {}, false, false, true);
  at::Tensor gr = g[0].defined() ? g[0] : at::zeros_like(s0.r_hat);
  at::Tensor gc = g[1].defined() ? g[1] : at::zeros_like(s0.c_hat);
  const double h = 1e-6;
  for (int which = 0; which < 2; ++which) {
    const at::Tensor& base = which == 0 ? s0.r_hat : s0.c_hat;
    const at::Tensor& grad = which == 0 ? gr : gc;
    for (int64_t i = 0; i < base.size(0); ++i)
      for (int64_t j = 0; j < base.size(1); ++j) {
        Scores p{s0.r_hat.clone(), s0.c_hat.clone()}, m{s0.r_hat.clone(), s0.c_hat.clone()};
        (which == 0 ? p.r_hat : p.c_hat)[i][j] += h;
        (which == 0 ? m.r_hat : m.c_hat)[i][j] -= h;
        const double fd = (L.compute(b, p, ctx).item<double>() - L.compute(b, m, ctx).item<double>()) / (2 * h);
        ASSERT_NEAR(grad[i][j].item<double>(), fd, tol) << L.name() << (which ? " c_hat" : " r_hat") << " [" << i
                                                         << "," << j << "]";
      }
  }
  at::Tensor v, dr, dc;
  if (L.value_and_grad(b, s0, ctx, v, dr, dc)) {
    EXPECT_NEAR(v.item<double>(), value.item<double>(), 1e-12 * (1 + std::abs(value.item<double>())));
    EXPECT_TRUE(at::allclose(dr, gr, 1e-10, 1e-12));
    EXPECT_TRUE(at::allclose(dc, gc, 1e-10, 1e-12));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Synthetic RCT data with a piecewise-constant ROI: x one-hot over P pieces, arm t uniform over M arms,
// y^c ~ Bernoulli(c[piece][t]), y^r ~ Bernoulli(r[piece][t]).
struct Trial {
  Batch batch;       // float32
  at::Tensor piece;  // N, int64
};

Trial make_trial(int64_t N, const std::vector<std::vector<double>>& r, const std::vector<std::vector<double>>& c,
                 uint64_t seed) {
  const int64_t P = int64_t(r.size()), M = int64_t(r[0].size());
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Trial tr;
  tr.piece = at::randint(P, {N}, gen, at::TensorOptions().dtype(at::kLong));
  Batch& b = tr.batch;
  b.t = at::randint(M, {N}, gen, at::TensorOptions().dtype(at::kLong));
  std::vector<double> rf, cf;
  for (int64_t k = 0; k < P; ++k)
    for (int64_t j = 0; j < M; ++j) rf.push_back(r[k][j]), cf.push_back(c[k][j]);
  const at::Tensor cell = tr.piece * M + b.t;
  const at::Tensor pr = at::tensor(rf, f64()).index_select(0, cell), pc = at::tensor(cf, f64()).index_select(0, cell);
  b.y_r = at::rand({N}, gen, f64()).lt(pr).to(at::kFloat);
  b.y_c = at::rand({N}, gen, f64()).lt(pc).to(at::kFloat);
  b.x = at::one_hot(tr.piece, P).to(at::kFloat);
  b.weight = at::ones({N}, at::TensorOptions().dtype(at::kFloat));
  return tr;
}

// The empirical minimiser of the DHCL loss on the whole trial, per piece and step: (A_r / A_c) with
// A = Σ_{piece, t=j} y / N_j - Σ_{piece, t=j-1} y / N_{j-1} (the form-independent θ the optimiser should reach).
std::vector<std::vector<double>> empirical_factor(const Trial& tr, int64_t P, int64_t M) {
  const at::Tensor t = tr.batch.t, pc = tr.piece;
  std::vector<double> n(M);
  for (int64_t j = 0; j < M; ++j) n[j] = t.eq(j).sum().item<double>();
  std::vector<std::vector<double>> out(P, std::vector<double>(M - 1));
  for (int64_t k = 0; k < P; ++k)
    for (int64_t j = 1; j < M; ++j) {
      const at::Tensor in_t = pc.eq(k).logical_and(t.eq(j)), in_c = pc.eq(k).logical_and(t.eq(j - 1));
      const double ar = tr.batch.y_r.to(at::kDouble).mul(in_t).sum().item<double>() / n[j] -
                        tr.batch.y_r.to(at::kDouble).mul(in_c).sum().item<double>() / n[j - 1];
      const double ac = tr.batch.y_c.to(at::kDouble).mul(in_t).sum().item<double>() / n[j] -
                        tr.batch.y_c.to(at::kDouble).mul(in_c).sum().item<double>() / n[j - 1];
      out[k][j - 1] = ar / ac;
    }
  return out;
}

// An UpliftNet with no hidden layers on the one-hot features: each head is one parameter per piece (plus a bias),
// i.e. a fully flexible piecewise-constant model.
model::UpliftNet piecewise_net(int64_t P, int64_t M, uint64_t seed) {
  model::UpliftNetConfig cfg;
  cfg.features = int(P), cfg.arms = int(M);
  cfg.trunk = {}, cfg.head = {};
  return model::UpliftNet(cfg, seed, at::kFloat);
}

// Adam on the whole trial: `epochs` passes over batches of `batch` rows at rate lr, then `polish` full-batch steps
// (the exact gradient of the whole trial's loss) with a fresh Adam at 0.2 lr decaying by 0.85 a step, so that the
// final iterate sits at the whole trial's minimiser rather than around the last batches'. Through the fused path
// (value_and_grad + the net's backward) or autograd (compute + backward).
void train(model::UpliftNet& net, const loss::Loss& L, const Batch& data, int64_t batch, int epochs, double lr,
           bool fused, int polish = 0, const LossContext& ctx = {}) {
  const int64_t N = data.rows();
  model::ForwardCache cache;
  at::Tensor value, d_r, d_c, grad;
  auto step = [&](torch::optim::Adam& opt, const Batch& b) {
    opt.zero_grad();
    if (fused) {
      torch::NoGradGuard no_grad;
      const Scores sc = net.forward_train(net.flat(), b.x, cache);
      ASSERT_TRUE(L.value_and_grad(b, sc, ctx, value, d_r, d_c));
      net.backward(net.flat(), cache, d_r, d_c, grad);
      net.flat().mutable_grad() = grad.clone();
    } else {
      L.compute(b, net.forward(b.x), ctx).backward();
    }
    opt.step();
  };
  torch::optim::Adam coarse({net.flat()}, torch::optim::AdamOptions(lr));
  for (int e = 0; e < epochs; ++e)
    for (int64_t s = 0; s < N; s += batch) step(coarse, rows(data, s, std::min(batch, N - s)));
  torch::optim::Adam fine({net.flat()}, torch::optim::AdamOptions(lr));
  for (int k = 0; k < polish; ++k) {
    static_cast<torch::optim::AdamOptions&>(fine.param_groups()[0].options()).lr(0.2 * lr * std::pow(0.85, k));
    step(fine, data);
  }
}

// The model's factor per piece and step (rows of the identity matrix as inputs).
std::vector<std::vector<double>> learned_factor(const model::UpliftNet& net, const loss::DhclSettings& set,
                                                int64_t P) {
  torch::NoGradGuard no_grad;
  const at::Tensor th = set.factors(net.forward(at::eye(P, at::TensorOptions().dtype(at::kFloat))).r_hat)
                            .to(at::kDouble)
                            .contiguous();
  std::vector<std::vector<double>> out(P, std::vector<double>(th.size(1)));
  for (int64_t k = 0; k < P; ++k)
    for (int64_t j = 0; j < th.size(1); ++j) out[k][j] = th[k][j].item<double>();
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

// ---------------------------------------------------------------------------------------------------------------
TEST(Dhcl, MatchesTheFormulaByHand) {
  const int64_t B = 10;
  Batch b = random_batch(B, 2, 3);
  b.weight[9] = 0;
  Scores s = random_scores(B, 2, 4);
  for (const std::string form : {"sigmoid", "exp"}) {
    const double K = form == "sigmoid" ? 2.0 : 0.5;
    auto L = make("  name: dhcl\n  form: " + form + "\n  scale: " + std::to_string(K) + "\n");
    double n[2] = {0, 0}, sum[2] = {0, 0};
    for (int64_t i = 0; i < B; ++i) n[b.t[i].item<int64_t>()] += b.weight[i].item<double>();
    for (int64_t i = 0; i < B; ++i) {
      const int64_t t = b.t[i].item<int64_t>();
      const double w = b.weight[i].item<double>(), yr = b.y_r[i].item<double>(), yc = b.y_c[i].item<double>();
      const double sc = s.r_hat[i][1].item<double>();
      double l;
      if (form == "sigmoid") {  // the spec's form in q = sigmoid(s): -[(y^r/K) log(q/(1-q)) + y^c log(1-q)]
        const double q = 1 / (1 + std::exp(-sc));
        l = -(yr / K * std::log(q / (1 - q)) + yc * std::log(1 - q));
      } else {
        l = -yr / K * sc + yc * std::exp(sc);
      }
      sum[t] += w * l;
    }
    const double want = sum[1] / n[1] - sum[0] / n[0];
    EXPECT_NEAR(L->compute(b, s, {}).item<double>(), want, 1e-12) << form;
    // Propensities: N_j = p_j N.
    LossContext ctx;
    ctx.arm_propensity = {0.25, 0.75};
    ctx.total_weight = 40;
    EXPECT_NEAR(L->compute(b, s, ctx).item<double>(), sum[1] / 30 - sum[0] / 10, 1e-12) << form;
  }
  // Multi-arm: adjacent pairs (j vs j-1), each with the binary loss on column j, summed.
  const int64_t M = 4;
  Batch m = random_batch(16, M, 5);
  Scores sm = random_scores(16, M, 6);
  auto L = make("  name: dhcl\n");
  double n[M] = {}, want = 0;
  for (int64_t i = 0; i < 16; ++i) n[m.t[i].item<int64_t>()] += 1;
  for (int64_t i = 0; i < 16; ++i) {
    const int64_t t = m.t[i].item<int64_t>();
    const double yr = m.y_r[i].item<double>(), yc = m.y_c[i].item<double>();
    auto l = [&](int64_t col) {
      const double sc = sm.r_hat[i][col].item<double>();
      return -yr * sc + yc * softplus(sc);
    };
    if (t >= 1) want += l(t) / n[t];          // treated in pair t
    if (t <= M - 2) want -= l(t + 1) / n[t];  // control in pair t + 1
  }
  EXPECT_NEAR(L->compute(m, sm, {}).item<double>(), want, 1e-12);
  // A pair with an empty group is left out: drop arm 2's rows (pairs 2 and 3 go).
  LossContext ctx;
  ctx.arm_rows = {n[0], n[1], 0, n[3]};
  double pair1 = 0;
  for (int64_t i = 0; i < 16; ++i) {
    const int64_t t = m.t[i].item<int64_t>();
    const double sc = sm.r_hat[i][1].item<double>();
    const double l = -m.y_r[i].item<double>() * sc + m.y_c[i].item<double>() * softplus(sc);
    if (t == 1) pair1 += l / n[1];
    if (t == 0) pair1 -= l / n[0];
  }
  EXPECT_NEAR(L->compute(m, sm, ctx).item<double>(), pair1, 1e-12);
}

TEST(Dhcl, GradientsMatchFiniteDifferences) {
  for (int64_t M : {2, 4})
    for (const std::string form : {"sigmoid", "exp"})
      for (int mode = 0; mode < 3; ++mode) {
        Batch b = random_batch(13, M, 20 + M, 2);
        Scores s = random_scores(13, M, 30 + M);
        LossContext ctx;
        if (mode == 1) ctx.arm_rows.assign(size_t(M), 7.0);
        if (mode == 2) ctx.arm_propensity.assign(size_t(M), 1.0 / double(M)), ctx.total_weight = 50;
        auto L = make("  name: dhcl\n  form: " + form + "\n  scale: 1.5\n");
        SCOPED_TRACE(form + " M=" + std::to_string(M) + " mode " + std::to_string(mode));
        check_gradient(*L, b, s, ctx, 1e-7);
      }
  // Beyond the clamp the factor is constant: gradient 0 there, in both paths.
  Batch b = random_batch(6, 2, 40);
  Scores s = random_scores(6, 2, 41);
  s.r_hat[0][1] = 40.0, s.r_hat[1][1] = -40.0;
  check_gradient(*make("  name: dhcl\n"), b, s, {}, 1e-7);
  check_gradient(*make("  name: dhcl\n  form: exp\n  clamp: 1e-3\n"), b, s, {}, 1e-7);
}

TEST(Dhcl, PaddingAndShardsAndFactors) {
  for (int64_t M : {2, 3}) {
    auto L = make("  name: dhcl\n  form: exp\n");
    Batch b = random_batch(24, M, 50 + M, 4);
    Scores s = random_scores(24, M, 60 + M);
    const double full = L->compute(b, s, {}).item<double>();
    // Padding rows change nothing, whatever their scores.
    Scores s2{s.r_hat.clone(), s.c_hat.clone()};
    s2.r_hat.narrow(0, 20, 4).fill_(5.0);
    EXPECT_NEAR(L->compute(b, s2, {}).item<double>(), full, 1e-12);
    // Two shards with the global counts sum to the whole batch's loss.
    LossContext ctx;
    for (int64_t j = 0; j < M; ++j) ctx.arm_rows.push_back(b.weight.mul(b.t.eq(j)).sum().item<double>());
    const double halves = L->compute(rows(b, 0, 11), rows(s, 0, 11), ctx).item<double>() +
                          L->compute(rows(b, 11, 13), rows(s, 11, 13), ctx).item<double>();
    EXPECT_NEAR(halves, full, 1e-12);
  }
  // θ = K g(clamp(s)) on columns 1..M-1.
  auto set = loss::DhclSettings::from(Config::from_string("loss:\n  scale: 2\n").sub("loss"));
  at::Tensor r = torch::tensor({{0.0, 0.0, 100.0}, {9.0, std::log(3.0), -100.0}}, f64());
  at::Tensor th = set.factors(r);
  ASSERT_EQ(th.size(1), 2);
  EXPECT_NEAR(th[0][0].item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(th[1][0].item<double>(), 1.5, 1e-12);
  EXPECT_NEAR(th[0][1].item<double>(), 2 * (1 - 1e-6), 1e-12);
  EXPECT_NEAR(th[1][1].item<double>(), 2e-6, 1e-12);
  // The Loss hook returns the same factors; DRP's is its ranking weight e^{tanh(s)}.
  EXPECT_TRUE(at::allclose(make("  name: dhcl\n  scale: 2\n")->decision_factors(r), th));
  at::Tensor r2 = r.narrow(1, 0, 2);
  EXPECT_TRUE(at::allclose(make("  name: drp\n")->decision_factors(r2), at::exp(at::tanh(r2.narrow(1, 1, 1)))));
  EXPECT_THROW(make("  name: drp\n")->decision_factors(r), DataError);
  auto ex = loss::DhclSettings::from(Config::from_string("loss:\n  form: exp\n").sub("loss"));
  EXPECT_NEAR(ex.factors(r)[1][0].item<double>(), 3.0, 1e-12);
  EXPECT_NEAR(ex.factors(r)[0][1].item<double>(), 1e6, 1e-3);
}

TEST(Dhcl, ConfigAndDataErrors) {
  const auto names = loss::loss_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "dhcl"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "drp"), names.end());
  EXPECT_THROW(make("  name: dhcl\n  form: log\n"), ConfigError);
  EXPECT_THROW(make("  name: dhcl\n  scale: 0\n"), ConfigError);
  EXPECT_THROW(make("  name: dhcl\n  clamp: 0.5\n"), ConfigError);
  EXPECT_THROW(make("  name: dhcl\n  form: exp\n  clamp: 0\n"), ConfigError);
  EXPECT_NO_THROW(make("  name: dhcl\n  clamp: 0\n"));
  try {
    make("  name: dhcl\n  form: logit\n");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("loss.form"), std::string::npos) << e.what();
  }
  Batch b = random_batch(4, 1, 1);
  EXPECT_THROW(make("  name: dhcl\n")->compute(b, random_scores(4, 1, 2), {}), DataError);
  LossContext bad;
  bad.arm_rows = {1, 2, 3};
  EXPECT_THROW(make("  name: dhcl\n")->compute(random_batch(4, 2, 1), random_scores(4, 2, 2), bad), DataError);
}

// The acceptance check: 1M RCT rows, 4 pieces with a known ROI each, a flexible model trained on the dhcl
// loss with Adam in big batches recovers the ROI within each piece to < 5% (both forms).
TEST(Dhcl, ConvergesToThePiecewiseRoi) {
  const std::vector<double> roi{0.2, 0.45, 0.7, 0.9};
  std::vector<std::vector<double>> r, c;
  for (int k = 0; k < 4; ++k) {
    const double c0 = 0.1 + 0.05 * k, r0 = 0.05 + 0.05 * k;
    c.push_back({c0, c0 + 0.6});
    r.push_back({r0, r0 + roi[k] * 0.6});
  }
  const Trial tr = make_trial(1000000, r, c, 7);
  const auto emp = empirical_factor(tr, 4, 2);
  for (const std::string form : {"sigmoid", "exp"}) {
    const auto t0 = std::chrono::steady_clock::now();
    auto L = make("  name: dhcl\n  form: " + form + "\n");
    auto set = loss::DhclSettings::from(Config::from_string("loss:\n  form: " + form + "\n").sub("loss"));
    model::UpliftNet net = piecewise_net(4, 2, 3);
    train(net, *L, tr.batch, 50000, 5, 0.05, form == "sigmoid", 20);  // 100 steps, then 20 full-batch steps
    const auto th = learned_factor(net, set, 4);
    for (int k = 0; k < 4; ++k) {
      const double err = std::abs(th[k][0] - roi[k]) / roi[k];
      const double opt_err = std::abs(th[k][0] - emp[k][0]) / emp[k][0];
      std::printf("dhcl %s piece %d: ROI %.3f learned %.4f (rel. error %.2f%%), empirical minimiser %.4f (%.3f%%)\n",
                  form.c_str(), k, roi[k], th[k][0], 100 * err, emp[k][0], 100 * opt_err);
      EXPECT_LT(err, 0.05) << form << " piece " << k;
      EXPECT_LT(opt_err, 0.01) << form << " piece " << k;  // the optimiser reached the loss's minimiser
    }
    std::printf("dhcl %s: %.1f s\n", form.c_str(), seconds_since(t0));
  }
}

// Multi-arm: arms ordered by cost, diminishing returns; θ per step converges to the step's ROI.
TEST(Dhcl, MultiArmStepFactorsConverge) {
  const std::vector<double> roi{0.3, 0.5, 0.7, 0.9};
  std::vector<std::vector<double>> r, c, truth;
  for (int k = 0; k < 4; ++k) {
    const double th1 = roi[k], th2 = 0.6 * roi[k], r0 = 0.05;
    c.push_back({0.05, 0.45, 0.85});
    r.push_back({r0, r0 + 0.4 * th1, r0 + 0.4 * th1 + 0.4 * th2});
    truth.push_back({th1, th2});
  }
  const Trial tr = make_trial(1000000, r, c, 9);
  const auto emp = empirical_factor(tr, 4, 3);
  const auto t0 = std::chrono::steady_clock::now();
  auto L = make("  name: dhcl\n");
  auto set = loss::DhclSettings::from(Config::from_string("loss:\n").sub("loss"));
  model::UpliftNet net = piecewise_net(4, 3, 5);
  train(net, *L, tr.batch, 50000, 5, 0.05, true, 20);
  const auto th = learned_factor(net, set, 4);
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 2; ++j) {
      const double err = std::abs(th[k][j] - truth[k][j]) / truth[k][j];
      const double opt_err = std::abs(th[k][j] - emp[k][j]) / emp[k][j];
      std::printf("dhcl multi-arm piece %d step %d: θ %.3f learned %.4f (rel. error %.2f%%), empirical %.4f (%.3f%%)\n",
                  k, j + 1, truth[k][j], th[k][j], 100 * err, emp[k][j], 100 * opt_err);
      EXPECT_LT(err, 0.10) << "piece " << k << " step " << j + 1;
      EXPECT_LT(opt_err, 0.01) << "piece " << k << " step " << j + 1;
    }
  std::printf("dhcl multi-arm: %.1f s\n", seconds_since(t0));
}

// ---------------------------------------------------------------------------------------------------------------
TEST(Drp, MatchesTheFormulaAndItsGradient) {
  const int64_t B = 12;
  Batch b = random_batch(B, 2, 70, 2);
  b.y_r = at::rand({B}, at::make_generator<at::CPUGeneratorImpl>(71), f64()) * 3;  // dR clearly away from the guard
  b.y_r.masked_fill_(b.t.eq(0), 0.1);
  Scores s = random_scores(B, 2, 72);
  auto L = make("  name: drp\n");
  double zt = 0, zc = 0, rt = 0, rc = 0, ct = 0, cc = 0;
  for (int64_t i = 0; i < B; ++i) {
    const double e = b.weight[i].item<double>() * std::exp(std::tanh(s.r_hat[i][1].item<double>()));
    if (b.t[i].item<int64_t>() == 1)
      zt += e, rt += e * b.y_r[i].item<double>(), ct += e * b.y_c[i].item<double>();
    else
      zc += e, rc += e * b.y_r[i].item<double>(), cc += e * b.y_c[i].item<double>();
  }
  const double dR = rt / zt - rc / zc, dC = ct / zt - cc / zc;
  ASSERT_GT(dR, 1e-3);
  EXPECT_NEAR(L->compute(b, s, {}).item<double>(), dC / dR, 1e-12);
  check_gradient(*L, b, s, {}, 1e-6);
  // Guard: dR <= min_dr holds the denominator at min_dr (finite loss, gradient through dC only).
  Batch g = b;
  g.y_r = at::zeros({B}, f64());
  auto G = make("  name: drp\n  min_dr: 0.01\n");
  EXPECT_NEAR(G->compute(g, s, {}).item<double>(), dC / 0.01, 1e-9);
  check_gradient(*G, g, s, {}, 1e-5);
  // A batch with one group only: 0. More than two arms: DataError. Bad key: ConfigError.
  Batch one = b;
  one.t = at::ones({B}, at::kLong);
  EXPECT_EQ(L->compute(one, s, {}).item<double>(), 0.0);
  EXPECT_THROW(L->compute(random_batch(6, 3, 1), random_scores(6, 3, 2), {}), DataError);
  EXPECT_THROW(make("  name: drp\n  min_dr: 0\n"), ConfigError);
}

// DRP on a DGP whose ROI varies by piece: a few hundred Adam steps rank users better than random (AUCC 0.5).
TEST(Drp, LearnsARankingBetterThanRandom) {
  const std::vector<double> roi{0.2, 0.8, 0.45, 0.65};
  std::vector<std::vector<double>> r, c;
  for (int k = 0; k < 4; ++k) {
    c.push_back({0.2, 0.6});
    r.push_back({0.1, 0.1 + roi[k] * 0.4});
  }
  const Trial train_set = make_trial(200000, r, c, 11), test_set = make_trial(200000, r, c, 12);
  auto L = make("  name: drp\n");
  model::UpliftNet net = piecewise_net(4, 2, 13);
  const auto t0 = std::chrono::steady_clock::now();
  train(net, *L, train_set.batch, 2000, 3, 0.02, false);  // 300 steps
  // AUCC on held-out rows, ranking by DRP's decision factor e^{tanh(r_hat_i1)}.
  at::Tensor score;
  {
    torch::NoGradGuard no_grad;
    score = L->decision_factors(net.forward(test_set.batch.x).r_hat).select(1, 0).to(at::kDouble).contiguous();
  }
  const at::Tensor arm = test_set.batch.t.to(at::kInt).contiguous();
  const at::Tensor yr = test_set.batch.y_r.contiguous(), yc = test_set.batch.y_c.contiguous();
  auto aucc_of = [&](const at::Tensor& sc) {
    metrics::AuccInput in;
    in.n = sc.size(0), in.arm = arm.data_ptr<int32_t>(), in.revenue = yr.data_ptr<float>();
    in.cost = yc.data_ptr<float>(), in.score = sc.data_ptr<double>();
    return metrics::Aucc(in).result().aucc;
  };
  const double learned = aucc_of(score);
  const at::Tensor oracle = at::tensor(roi, f64()).index_select(0, test_set.piece).contiguous();
  const double best = aucc_of(oracle);
  std::printf("drp: AUCC %.4f (true-ROI ranking %.4f, random 0.5), %.1f s\n", learned, best, seconds_since(t0));
  EXPECT_GT(learned, 0.55);
  EXPECT_GT(learned, best - 0.02);
}
