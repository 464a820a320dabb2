// \brief The torch-free row functions the CPU fused path and the CUDA kernels share (loss/rows.h, solver/ksection.h):
// the softmax-policy row and the factual row against autograd in float64 (1e-12), on strided views, ties and
// saturated probabilities; float32 against float64; the K-section λ* search against brute force over every
// breakpoint of a tiny instance, K = 1 against a plain bisection written out here, and K = 32 against K = 1.
#include <ATen/CPUGeneratorImpl.h>  // for at::CPUGeneratorImpl
#include <gtest/gtest.h>            // for TEST
#include <torch/torch.h>            // for torch::autograd::grad

#include <algorithm>  // for std::sort, std::max
#include <cmath>      // for std::abs
#include <cstdint>    // for int64_t
#include <cstdio>     // for std::printf
#include <string>     // for std::string
#include <vector>     // for std::vector

#include "core/config.h"         // for Config
#include "loss/decision.h"       // for primal_lambda
#include "loss/loss.h"           // for make_loss
#include "loss/factual_terms.h"  // for factual_terms
#include "loss/rows.h"           // for rows::softmax_policy_row, rows::factual_row
#include "model/batch.h"         // for Batch
#include "solver/ksection.h"     // for ksection_row, ksection_search

using namespace dfcl;

namespace {

at::TensorOptions f64() { return at::TensorOptions().dtype(at::kDouble); }

double max_rel(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1.0, b.abs().max().item<double>());
}

}  // namespace

TEST(LossRows, SoftmaxPolicyRowMatchesAutogradOnStridedViewsAndTies) {
  const int64_t B = 64, M = 5;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  // The net's output layout: one B x 2M table, r̂ and ĉ strided views of it.
  at::Tensor out = at::randn({B, 2 * M}, gen, f64());
  out.narrow(0, 0, 8).narrow(1, 1, 1).copy_(out.narrow(0, 0, 8).narrow(1, 0, 1));          // tied revenue columns
  out.narrow(0, 0, 8).narrow(1, M + 1, 1).copy_(out.narrow(0, 0, 8).narrow(1, M, 1));      // and tied costs
  const at::Tensor t = at::randint(M, {B}, gen, at::TensorOptions().dtype(at::kLong));
  const at::Tensor gain = at::randn({B}, gen, f64());
  for (double lambda : {0.0, 0.3, 2.0})
    for (double tau : {0.05, 1.0, 3.0}) {
      SCOPED_TRACE(testing::Message() << "lambda " << lambda << " tau " << tau);
      at::Tensor r = out.narrow(1, 0, M).detach().requires_grad_(true);
      at::Tensor c = out.narrow(1, M, M).detach().requires_grad_(true);
      const at::Tensor p_t = at::log_softmax((r - lambda * c) / tau, 1).gather(1, t.unsqueeze(1)).squeeze(1).exp();
      const at::Tensor ref = -(gain * p_t).sum();
      const auto grads = torch::autograd::grad({ref}, {r, c});

      const at::Tensor view = out.narrow(1, 0, M);  // stride 2M between rows, 1 between columns
      at::Tensor dr = at::zeros({B, M}, f64()), dc = at::zeros({B, M}, f64());
      double value = 0;
      const double* o = out.data_ptr<double>();
      for (int64_t i = 0; i < B; ++i)
        value += loss::rows::softmax_policy_row<double>(o + i * 2 * M, o + i * 2 * M + M, 1, int(M), int(t[i].item<int64_t>()),
                                                        lambda, tau, gain[i].item<double>(), dr.data_ptr<double>() + i * M,
                                                        dc.data_ptr<double>() + i * M);
      EXPECT_NEAR(value, ref.item<double>(), 1e-12 * std::max(1.0, std::abs(value)));
      EXPECT_LT(max_rel(dr, grads[0]), 1e-12);
      EXPECT_LT(max_rel(dc, grads[1]), 1e-12);
      EXPECT_EQ(view.stride(0), 2 * M);

      // A column step: the same row read from a transposed copy (m values at step B).
      const at::Tensor rt = out.narrow(1, 0, M).t().contiguous(), ct = out.narrow(1, M, M).t().contiguous();
      double row0[M], c0[M];
      for (int j = 0; j < M; ++j) row0[j] = c0[j] = 0;
      const double v0 = loss::rows::softmax_policy_row<double>(rt.data_ptr<double>(), ct.data_ptr<double>(), B, int(M),
                                                               int(t[0].item<int64_t>()), lambda, tau,
                                                               gain[0].item<double>(), row0, c0);
      double w0[M], wc0[M];
      for (int j = 0; j < M; ++j) w0[j] = wc0[j] = 0;
      const double v1 = loss::rows::softmax_policy_row<double>(o, o + M, 1, int(M), int(t[0].item<int64_t>()), lambda,
                                                               tau, gain[0].item<double>(), w0, wc0);
      EXPECT_EQ(v0, v1);
      for (int j = 0; j < M; ++j) {
        EXPECT_EQ(row0[j], w0[j]);
        EXPECT_EQ(c0[j], wc0[j]);
      }

      // float32 against float64: 1e-5 relative.
      const at::Tensor of = out.to(at::kFloat);
      at::Tensor drf = at::zeros({B, M}, at::TensorOptions().dtype(at::kFloat)), dcf = at::zeros_like(drf);
      double vf = 0;
      for (int64_t i = 0; i < B; ++i)
        vf += loss::rows::softmax_policy_row<float>(of.data_ptr<float>() + i * 2 * M, of.data_ptr<float>() + i * 2 * M + M,
                                                    1, int(M), int(t[i].item<int64_t>()), float(lambda), float(tau),
                                                    gain[i].item<float>(), drf.data_ptr<float>() + i * M,
                                                    dcf.data_ptr<float>() + i * M);
      EXPECT_NEAR(vf, value, 1e-5 * std::max(1.0, std::abs(value)));
      EXPECT_LT(max_rel(drf.to(at::kDouble), dr), 1e-5 * std::max(1.0, 1.0 / tau));
    }
}

TEST(LossRows, SoftmaxPolicyRowWithoutCostGradientAddsOnlyToRevenue) {
  const double r[3] = {1.0, 0.5, -0.2}, c[3] = {0.1, 0.4, 0.0};
  double dr[3] = {1, 1, 1}, dc[3] = {7, 7, 7};
  loss::rows::softmax_policy_row<double>(r, c, 1, 3, 1, 0.5, 1.0, 2.0, dr, nullptr);
  for (double x : dc) EXPECT_EQ(x, 7.0);
  double sum = 0;
  for (double x : dr) sum += x - 1;  // the softmax gradient sums to 0 over arms
  EXPECT_NEAR(sum, 0.0, 1e-15);
}

TEST(LossRows, FactualRowMatchesAutogradForMseAndBceIncludingClamps) {
  const int64_t B = 40, M = 3;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  at::Tensor r = at::rand({B, M}, gen, f64()), c = at::rand({B, M}, gen, f64());
  r[0][0] = 0.0, r[1][1] = 1.0, c[2][2] = 0.0;  // saturated probabilities: the clamp's zero gradient
  const at::Tensor t = at::randint(M, {B}, gen, at::TensorOptions().dtype(at::kLong));
  t[0] = 0, t[1] = 1, t[2] = 2;
  const at::Tensor yr = at::rand({B}, gen, f64()).gt(0.5).to(at::kDouble), yc = at::rand({B}, gen, f64());
  const at::Tensor coef = at::rand({B}, gen, f64());
  for (auto kind : {loss::OutcomeLoss::kMse, loss::OutcomeLoss::kBce}) {
    SCOPED_TRACE(kind == loss::OutcomeLoss::kMse ? "mse" : "bce");
    const loss::rows::FactualRow f{kind, kind, 0.7, 1.3};
    at::Tensor rv = r.clone().requires_grad_(true), cv = c.clone().requires_grad_(true);
    const at::Tensor ref = (coef * (0.7 * loss::factual_terms(rv, t, yr, kind, "revenue") +
                                    1.3 * loss::factual_terms(cv, t, yc, kind, "cost"))).sum();
    const auto grads = torch::autograd::grad({ref}, {rv, cv});
    at::Tensor dr = at::zeros({B, M}, f64()), dc = at::zeros({B, M}, f64());
    double value = 0;
    int bad = 0;
    for (int64_t i = 0; i < B; ++i)
      value += loss::rows::factual_row<double>(f, r.data_ptr<double>() + i * M, c.data_ptr<double>() + i * M, 1,
                                               int(t[i].item<int64_t>()), yr[i].item<double>(), yc[i].item<double>(),
                                               coef[i].item<double>(), dr.data_ptr<double>() + i * M,
                                               dc.data_ptr<double>() + i * M, bad);
    EXPECT_EQ(bad, 0);
    EXPECT_NEAR(value, ref.item<double>(), 1e-12 * std::max(1.0, std::abs(value)));
    EXPECT_LT(max_rel(dr, grads[0]), 1e-12);
    EXPECT_LT(max_rel(dc, grads[1]), 1e-12);
  }
  // A bce label outside [0, 1] sets the outcome's bit; mse accepts any label.
  const double p[1] = {0.5};
  double d1[1] = {0}, d2[1] = {0};
  int bad = 0;
  loss::rows::factual_row<double>({loss::OutcomeLoss::kBce, loss::OutcomeLoss::kMse, 1, 1}, p, p, 1, 0, 2.0, 5.0, 1.0,
                                  d1, d2, bad);
  EXPECT_EQ(bad, 1);
  bad = 0;
  loss::rows::factual_row<double>({loss::OutcomeLoss::kMse, loss::OutcomeLoss::kBce, 1, 1}, p, p, 1, 0, 2.0, -0.5, 1.0,
                                  d1, d2, bad);
  EXPECT_EQ(bad, 2);
}

namespace {

// A tiny RCT instance for the λ* search: n rows, m arms, real scores, u = 1 / p_t with p = 1/m.
struct Instance {
  int n, m;
  std::vector<double> r, c, u, yr, yc;
  std::vector<int> t;
  double n_total() const { return double(n); }
  // Per-capita IPW spend and revenue of the dual policy at λ.
  std::pair<double, double> at(double lambda) const {
    std::vector<double> rev(1), cost(1);
    for (int i = 0; i < n; ++i)
      solver::ksection_row(&r[size_t(i) * m], &c[size_t(i) * m], m, t[size_t(i)], u[size_t(i)], yr[size_t(i)],
                           yc[size_t(i)], &lambda, 1, rev.data(), cost.data());
    return {rev[0] / n, cost[0] / n};
  }
  double hi() const {
    double h = 0;
    for (size_t k = 0; k < r.size(); ++k)
      if (c[k] > 0) h = std::max(h, r[k] / c[k]);
    return h;
  }
  // Every λ > 0 where some row's policy can change.
  std::vector<double> breakpoints() const {
    std::vector<double> out;
    for (int i = 0; i < n; ++i)
      for (int a = 0; a < m; ++a)
        for (int b = a + 1; b < m; ++b) {
          const double dc = c[size_t(i) * m + b] - c[size_t(i) * m + a];
          if (dc == 0) continue;
          const double l = (r[size_t(i) * m + b] - r[size_t(i) * m + a]) / dc;
          if (l > 0) out.push_back(l);
        }
    std::sort(out.begin(), out.end());
    return out;
  }
};

Instance tiny(uint64_t seed, int n, int m) {
  Instance in{n, m, {}, {}, {}, {}, {}, {}};
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor r = at::rand({n, m}, gen, f64()) * 2, c = at::rand({n, m}, gen, f64());
  const at::Tensor t = at::randint(m, {n}, gen, at::TensorOptions().dtype(at::kLong));
  const at::Tensor yr = at::rand({n}, gen, f64()) * 3, yc = at::rand({n}, gen, f64()) * 2;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < m; ++j) in.r.push_back(r[i][j].item<double>()), in.c.push_back(j == 0 ? 0.0 : c[i][j].item<double>());
    in.t.push_back(int(t[i].item<int64_t>()));
    in.u.push_back(double(m));
    in.yr.push_back(yr[i].item<double>());
    in.yc.push_back(in.t.back() == 0 ? 0.0 : yc[i].item<double>());
  }
  return in;
}

solver::KSectionResult search(const Instance& in, double budget, int k) {
  auto eval = [&](const std::vector<double>& lam, std::vector<double>& rev, std::vector<double>& cost) {
    std::vector<double> a(lam.size(), 0.0), b(lam.size(), 0.0);
    for (int i = 0; i < in.n; ++i)
      solver::ksection_row(&in.r[size_t(i) * in.m], &in.c[size_t(i) * in.m], in.m, in.t[size_t(i)], in.u[size_t(i)],
                           in.yr[size_t(i)], in.yc[size_t(i)], lam.data(), int(lam.size()), a.data(), b.data());
    for (size_t q = 0; q < lam.size(); ++q) rev[q] = a[q] / in.n, cost[q] = b[q] / in.n;
  };
  return solver::ksection_search(eval, in.hi(), budget, k, solver::ksection_passes(k, 50), 1e-4);
}

}  // namespace

TEST(LossRows, KSectionFindsABudgetCrossingAgainstBruteForce) {
  int crossings = 0, matches = 0;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    const Instance in = tiny(seed, 12, 3);
    const double full = in.at(0.0).second;
    if (!(full > 0)) continue;  // the λ = 0 policy spends nothing here: no budget binds
    for (double frac : {0.2, 0.5, 0.8, 1.5})
      for (int k : {1, 4, 32}) {
        SCOPED_TRACE(testing::Message() << "seed " << seed << " budget x" << frac << " K " << k);
        const double budget = frac * full;
        const solver::KSectionResult res = search(in, budget, k);
        // The reported spend is the spend at the reported λ.
        EXPECT_EQ(res.cost, in.at(res.lambda).second);
        if (frac >= 1) {  // the λ = 0 policy fits: the budget does not bind
          EXPECT_EQ(res.lambda, 0.0);
          continue;
        }
        if (res.matched) {
          EXPECT_LT(std::abs(res.cost - budget), 1e-4 * budget);
          ++matches;
          continue;
        }
        ++crossings;
        // Otherwise λ sits (to the search's resolution) on a breakpoint where the spend crosses the budget: over
        // budget just left of it, under just right of it.
        bool crossing = false;
        for (double b : in.breakpoints()) {
          if (std::abs(b - res.lambda) > 1e-9 * in.hi()) continue;
          const double step = 1e-11 * in.hi();
          crossing = crossing || (in.at(b - step).second >= budget && in.at(b + step).second < budget);
        }
        EXPECT_TRUE(crossing) << "λ " << res.lambda << " spend " << res.cost << " budget " << budget;
      }
  }
  EXPECT_GT(crossings, 100);  // the brute-force branch ran (12 rows: the spend jumps past most budgets)
  std::printf("K-section vs brute force: %d crossings, %d matched\n", crossings, matches);
}

TEST(LossRows, KSectionWithOneCandidateIsBisection) {
  // Bisection written out: probe λ = 0, then midpoints until the spend is within eps of the budget.
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const Instance in = tiny(seed + 100, 30, 4);
    const double budget = 0.4 * in.at(0.0).second;
    double lo = 0, hi = in.hi(), lam = 0;
    int iterations = 0;
    for (; iterations < 50; ++iterations) {
      const double mid = 0.5 * (lo + hi);
      if (!(mid > lo && mid < hi)) break;
      lam = mid;
      const double cost = in.at(mid).second;
      if (std::abs(budget - cost) < 1e-4 * budget) break;
      (budget - cost > 0 ? hi : lo) = mid;
    }
    const solver::KSectionResult res = search(in, budget, 1);
    EXPECT_EQ(res.lambda, lam) << "seed " << seed;  // bitwise: the same midpoints
    EXPECT_EQ(res.passes, 1 + iterations + (res.matched ? 1 : 0));  // the probe, the midpoints
  }
}

TEST(LossRows, KSectionAgreesWithBisectionWhereTheSpendIsMonotone) {
  // Two arms, a free control: each treated row spends y^c while λ is under its breakpoint, so the IPW spend falls
  // with λ and crosses the budget once; K = 32 and bisection must find the same λ (or both match on the same plateau).
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const Instance in = tiny(seed + 200, 40, 2);
    const double budget = 0.45 * in.at(0.0).second;
    const solver::KSectionResult bis = search(in, budget, 1), k32 = search(in, budget, 32);
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    if (bis.matched || k32.matched) {
      EXPECT_TRUE(bis.matched && k32.matched);
      EXPECT_EQ(bis.cost, k32.cost);  // the same plateau of the spend
    } else {
      EXPECT_NEAR(k32.lambda, bis.lambda, 1e-9 * in.hi());
    }
    EXPECT_LT(k32.passes, bis.passes);  // ~11 passes instead of ~50
  }
}

TEST(LossRows, PrimalLambdaKSectionOnABatchAgreesWithBisection) {
  // loss::primal_lambda through both modes on a batch (the path ppl and the trainer use).
  const int64_t B = 400, M = 2;  // a free control and one treatment: the spend falls with λ (see above)
  auto gen = at::make_generator<at::CPUGeneratorImpl>(17);
  model::Batch b;
  b.x = at::zeros({B, 1}, f64());
  b.t = at::randint(M, {B}, gen, at::TensorOptions().dtype(at::kLong));
  b.y_r = at::rand({B}, gen, f64()) * 3;
  b.y_c = at::rand({B}, gen, f64()) * 2;
  b.weight = at::ones({B}, f64());
  b.y_c.mul_(b.t.to(at::kDouble));  // control rows spend nothing
  const at::Tensor r = at::rand({B, M}, gen, f64()) * 2;
  at::Tensor c = at::rand({B, M}, gen, f64());
  c.select(1, 0).zero_();
  const at::Tensor u = at::full({B}, double(M), f64());
  for (double budget : {0.2, 0.5, 0.9}) {
    const loss::LambdaSearch bis = loss::primal_lambda(r, c, b, u, {}, budget, 50, 1e-4, 1);
    const loss::LambdaSearch ks = loss::primal_lambda(r, c, b, u, {}, budget, 50, 1e-4, 32);
    if (ks.matched || bis.matched)
      EXPECT_EQ(ks.cost, bis.cost) << "budget " << budget;
    else
      EXPECT_NEAR(ks.lambda, bis.lambda, 1e-9) << "budget " << budget;
    EXPECT_LE(ks.iterations, bis.iterations);
  }
}

TEST(LossRows, DhclRowPathMatchesAutogradWithTheClampActive) {
  // dhcl's value_and_grad runs rows::dhcl_row on the CPU (the CUDA kernel's row function); its autograd compute() is
  // the reference. Scores span the clamp (|s| up to 30, bound log((1-ε)/ε) ≈ 13.8 at ε = 1e-6) and softplus's
  // threshold (20), in both forms and with three arms (the last arm has no next step).
  const int64_t B = 90, M = 3;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(23);
  model::Batch b;
  b.x = at::zeros({B, 1}, f64());
  b.t = at::randint(M, {B}, gen, at::TensorOptions().dtype(at::kLong));
  b.y_r = at::rand({B}, gen, f64()) * 3;
  b.y_c = at::rand({B}, gen, f64());
  b.weight = at::ones({B}, f64());
  b.weight.narrow(0, B - 4, 4).zero_();
  for (const char* form : {"sigmoid", "exp"}) {
    SCOPED_TRACE(form);
    const double span = std::string(form) == "exp" ? 20.0 : 30.0;
    at::Tensor r = (at::rand({B, M}, gen, f64()) * 2 - 1) * span;
    const at::Tensor c = at::rand({B, M}, gen, f64());
    auto L = loss::make_loss(Config::from_string(std::string("loss:\n  name: dhcl\n  form: ") + form +
                                                 "\n  scale: 2\n  clamp: 0.000001\n")
                                 .sub("loss"));
    at::Tensor rv = r.clone().requires_grad_(true);
    const at::Tensor ref = L->compute(b, model::Scores{rv, c}, {});
    const at::Tensor g = torch::autograd::grad({ref}, {rv})[0];
    at::Tensor value, d_r, d_c;
    ASSERT_TRUE(L->value_and_grad(b, model::Scores{r, c}, {}, value, d_r, d_c));
    EXPECT_NEAR(value.item<double>(), ref.item<double>(), 1e-12 * std::max(1.0, std::abs(ref.item<double>())));
    EXPECT_LT(max_rel(d_r, g), 1e-12);
    EXPECT_EQ(d_c.abs().max().item<double>(), 0.0);
    EXPECT_GT(r.abs().gt(13.9).sum().item<int64_t>(), 10);  // the clamp was active on some rows
  }
}
