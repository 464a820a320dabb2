// \brief The softmax-policy decision losses pll, merl and ppl: values against the formulas by hand, compute()'s
// gradient against finite differences, the closed-form value_and_grad against autograd (float64), padding and shard
// invariance, the gradient's sign, MERL's small-τ limit, PPL's λ* against the training budget, config errors.
#include <ATen/CPUGeneratorImpl.h>  // for at::CPUGeneratorImpl
#include <gtest/gtest.h>            // for TEST
#include <torch/torch.h>            // for torch::autograd::grad

#include <algorithm>  // for std::max, std::find
#include <cmath>      // for std::exp, std::abs
#include <limits>     // for std::numeric_limits
#include <iomanip>    // for std::setprecision
#include <memory>     // for std::unique_ptr
#include <sstream>    // for std::ostringstream
#include <string>     // for std::string
#include <vector>     // for std::vector

#include "core/config.h"    // for Config
#include "core/error.h"     // for ConfigError, DataError
#include "loss/decision.h"  // for primal_lambda, row_weights
#include "loss/fixtures.h"  // for make, f64, rows
#include "loss/loss.h"      // for make_loss, loss_names, LossContext
#include "model/batch.h"    // for Batch
#include "model/scores.h"   // for Scores

using namespace dfcl;
using loss::LossContext;
using model::Batch;
using model::Scores;

using namespace dfcl::loss_test;

namespace {


// B rows over M arms, real-valued outcomes; the last `padding` rows have weight 0.
Batch random_batch(int64_t B, int64_t M, uint64_t seed, int64_t padding = 0) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Batch b;
  b.x = at::randn({B, 2}, gen, f64());
  b.t = at::randint(M, {B}, gen, at::TensorOptions().dtype(at::kLong));
  b.y_r = at::rand({B}, gen, f64()) * 3;
  b.y_c = at::rand({B}, gen, f64()) * 2;
  b.weight = at::ones({B}, f64());
  if (padding > 0) b.weight.narrow(0, B - padding, padding).zero_();
  return b;
}

Scores random_scores(int64_t B, int64_t M, uint64_t seed, double scale = 1.0) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return Scores{at::randn({B, M}, gen, f64()) * scale, at::rand({B, M}, gen, f64()) * scale};
}


// A double as YAML text that reads back exactly.
std::string num(double x) {
  std::ostringstream o;
  o << std::setprecision(17) << x;
  return o.str();
}

double max_abs(const at::Tensor& t) { return t.numel() ? t.abs().max().item<double>() : 0.0; }

// IPW row weights by hand: w_i / p_{t_i}, p_j the given propensities or the batch's weighted arm shares.
std::vector<double> ipw_by_hand(const Batch& b, int64_t M, const std::vector<double>& prop = {}) {
  const int64_t B = b.rows();
  std::vector<double> n(static_cast<size_t>(M), 0.0), u(static_cast<size_t>(B));
  double total = 0;
  for (int64_t i = 0; i < B; ++i) {
    n[size_t(b.t[i].item<int64_t>())] += b.weight[i].item<double>();
    total += b.weight[i].item<double>();
  }
  for (int64_t i = 0; i < B; ++i) {
    const auto j = size_t(b.t[i].item<int64_t>());
    const double p = prop.empty() ? n[j] / total : prop[j];
    u[size_t(i)] = b.weight[i].item<double>() / p;
  }
  return u;
}

// The decision part by hand: Σ_λ −(1/N) Σ_i u_i v_i softmax((r̂_i − λ ĉ_i)/τ)_{t_i}, with v_i = y^r − λ y^c (dual) or
// y^r (revenue_only), u_i IPW or the row weight, N the weight sum.
double decision_by_hand(const Batch& b, const Scores& s, const std::vector<double>& lambdas, double tau, bool ipw,
                        bool revenue_only, const std::vector<double>& prop = {}) {
  const int64_t B = b.rows(), M = s.r_hat.size(1);
  const std::vector<double> u_ipw = ipw_by_hand(b, M, prop);
  double N = 0;
  for (int64_t i = 0; i < B; ++i) N += b.weight[i].item<double>();
  double L = 0;
  for (double lam : lambdas)
    for (int64_t i = 0; i < B; ++i) {
      const double w = b.weight[i].item<double>();
      if (w == 0) continue;
      const int64_t t = b.t[i].item<int64_t>();
      double mx = -std::numeric_limits<double>::infinity();
      std::vector<double> a(static_cast<size_t>(M));
      for (int64_t j = 0; j < M; ++j) {
        a[size_t(j)] = (s.r_hat[i][j].item<double>() - lam * s.c_hat[i][j].item<double>()) / tau;
        mx = std::max(mx, a[size_t(j)]);
      }
      double z = 0;
      for (double x : a) z += std::exp(x - mx);
      const double p_t = std::exp(a[size_t(t)] - mx) / z;
      const double v = b.y_r[i].item<double>() - (revenue_only ? 0.0 : lam * b.y_c[i].item<double>());
      L -= (ipw ? u_ipw[size_t(i)] : w) * v * p_t / N;
    }
  return L;
}

// Per-capita IPW spend of the argmax policy of r̂ − λ ĉ, by brute force.
double spend_by_hand(const Batch& b, const Scores& s, double lam) {
  const int64_t B = b.rows(), M = s.r_hat.size(1);
  const std::vector<double> u = ipw_by_hand(b, M);
  double N = 0, spend = 0;
  for (int64_t i = 0; i < B; ++i) {
    N += b.weight[i].item<double>();
    int64_t best = 0;
    double bv = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < M; ++j) {
      const double v = s.r_hat[i][j].item<double>() - lam * s.c_hat[i][j].item<double>();
      if (v > bv) bv = v, best = j;
    }
    if (best == b.t[i].item<int64_t>()) spend += u[size_t(i)] * b.y_c[i].item<double>();
  }
  return spend / N;
}

// compute()'s value and its autograd gradient with respect to the scores.
struct Reference {
  double value;
  at::Tensor d_r, d_c;
};
Reference autograd_reference(const loss::Loss& L, const Batch& b, const Scores& s, const LossContext& ctx) {
  at::Tensor r = s.r_hat.detach().clone().requires_grad_(true), c = s.c_hat.detach().clone().requires_grad_(true);
  at::Tensor v = L.compute(b, Scores{r, c}, ctx);
  EXPECT_EQ(v.dim(), 0);
  auto g = torch::autograd::grad({v}, {r, c}, {}, {}, false, /*allow_unused=*/true);
  for (at::Tensor& d : g)
    if (!d.defined()) d = at::zeros_like(s.r_hat);
  return Reference{v.item<double>(), g[0], g[1]};
}

// The fused path against compute() and autograd (1e-10).
void check_fused(const loss::Loss& L, const Batch& b, const Scores& s, const LossContext& ctx) {
  const Reference ref = autograd_reference(L, b, s, ctx);
  at::Tensor value, d_r = at::full_like(s.r_hat, 7.0), d_c;  // d_r holds garbage: it must be overwritten
  ASSERT_TRUE(L.value_and_grad(b, s, ctx, value, d_r, d_c));
  EXPECT_EQ(value.dim(), 0);
  EXPECT_FALSE(value.requires_grad());
  EXPECT_NEAR(value.item<double>(), ref.value, 1e-12 * std::max(1.0, std::abs(ref.value)));
  ASSERT_EQ(d_r.sizes(), s.r_hat.sizes());
  ASSERT_EQ(d_c.sizes(), s.c_hat.sizes());
  const double scale = std::max(1.0, std::max(max_abs(ref.d_r), max_abs(ref.d_c)));
  EXPECT_LE(max_abs(d_r - ref.d_r), 1e-10 * scale);
  EXPECT_LE(max_abs(d_c - ref.d_c), 1e-10 * scale);
  EXPECT_GT(max_abs(ref.d_r) + max_abs(ref.d_c), 1e-6);  // not vacuous
}

std::string config_error(const std::string& body) {
  try {
    Config c = Config::from_string("loss:\n" + body);
    auto L = loss::make_loss(c.sub("loss"));
    c.check_all_used();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// The losses under test: a name and a config body (α = 0 unless the caller adds it).
struct Variant {
  std::string label, body;
  bool sample = false;  // ppl with lambda_source: sample (the caller fills sample_lambda)
};
std::vector<Variant> variants() {
  return {Variant{"pll", "  name: pll\n  lambdas: [0.1, 0.5, 1.0]\n"},
          Variant{"pll single λ", "  name: pll\n  lambdas: [2.0]\n"},
          Variant{"merl", "  name: merl\n  lambdas: [0.1, 0.7]\n  tau: 0.3\n"},
          Variant{"merl large τ", "  name: merl\n  lambdas: [0.5]\n  tau: 5\n"},
          Variant{"ppl batch", "  name: ppl\n  budgets: [0.3, 0.8]\n  tau: 0.5\n"},
          Variant{"ppl sample", "  name: ppl\n  budgets: [0.3, 0.8]\n  lambda_source: sample\n", true}};
}
}  // namespace

TEST(DecisionSoftmax, RegisteredByNameWithTheirHooks) {
  const auto names = loss::loss_names();
  for (const char* n : {"pll", "merl", "ppl"}) EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  auto pll = make("  name: pll\n");
  EXPECT_EQ(pll->name(), "pll");
  EXPECT_TRUE(pll->lambda_budgets().empty());
  EXPECT_EQ(make("  name: merl\n  tau: 0.5\n")->name(), "merl");
  auto ppl = make("  name: ppl\n  budgets: [0.2, 0.5]\n");
  EXPECT_EQ(ppl->name(), "ppl");
  EXPECT_EQ(ppl->lambda_budgets(), (std::vector<double>{0.2, 0.5}));
  EXPECT_EQ(ppl->lambda_source(), "batch");
  EXPECT_EQ(make("  name: ppl\n  budgets: [1]\n  lambda_source: sample\n")->lambda_source(), "sample");
}

TEST(Pll, MatchesTheFormulaByHand) {
  const int64_t B = 11, M = 3;
  Batch b = random_batch(B, M, 3, 2);
  Scores s = random_scores(B, M, 4);
  auto tsm = make("  name: tsm_sl\n");
  for (bool ipw : {true, false})
    for (double alpha : {0.0, 0.7})
      for (const std::vector<double>& lams : {std::vector<double>{0.1}, std::vector<double>{0.1, 0.5, 1.0}}) {
        SCOPED_TRACE(std::string(ipw ? "ipw" : "raw") + " alpha " + std::to_string(alpha) + " |Λ| " +
                     std::to_string(lams.size()));
        std::string grid = "[";
        for (double l : lams) grid += std::to_string(l) + ",";
        grid.back() = ']';
        const std::string keys = "  lambdas: " + grid + "\n  alpha: " + std::to_string(alpha) +
                                 "\n  weighting: " + (ipw ? "ipw" : "raw") + "\n";
        const double expect =
            decision_by_hand(b, s, lams, 1.0, ipw, false) + alpha * tsm->compute(b, s, {}).item<double>();
        EXPECT_NEAR(make("  name: pll\n" + keys)->compute(b, s, {}).item<double>(), expect, 1e-13);
        // merl: the same formula with its temperature τ (τ = 1 would be pll, which merl refuses).
        const double expect_tau =
            decision_by_hand(b, s, lams, 0.25, ipw, false) + alpha * tsm->compute(b, s, {}).item<double>();
        EXPECT_NEAR(make("  name: merl\n  tau: 0.25\n" + keys)->compute(b, s, {}).item<double>(), expect_tau, 1e-13);
        // The dataset's propensities replace the batch shares in u_i (and in L_PL's N_j).
        LossContext prop;
        prop.arm_propensity = {0.5, 0.3, 0.2};
        const double expect_prop = decision_by_hand(b, s, lams, 1.0, ipw, false, prop.arm_propensity) +
                                   alpha * tsm->compute(b, s, prop).item<double>();
        EXPECT_NEAR(make("  name: pll\n" + keys)->compute(b, s, prop).item<double>(), expect_prop, 1e-13);
      }
}

TEST(Merl, PresetsSetTheTemperatureAndWeighting) {
  Batch b = random_batch(9, 3, 5, 1);
  Scores s = random_scores(9, 3, 6);
  auto value = [&](const std::string& body) { return make(body)->compute(b, s, {}).item<double>(); };
  // The paper preset: Λ = [0.1, 0.5, 1], α = 1, IPW; τ has no default there (it must suit the scores' scale), and
  // τ = 1 is refused: it is pll.
  EXPECT_NEAR(value("  name: merl\n  tau: 0.4\n"),
              value("  name: merl\n  preset: none\n  lambdas: [0.1, 0.5, 1.0]\n  alpha: 1\n  weighting: ipw\n"
                    "  tau: 0.4\n"),
              1e-14);
  EXPECT_NE(config_error("  name: merl\n").find("loss.tau is required for merl"), std::string::npos);
  EXPECT_NE(config_error("  name: merl\n  tau: 1\n").find("makes merl exactly pll"), std::string::npos);
  // The reference preset: Λ = [0.1], α = 0, raw labels, τ = 5 (the DFCL notebook).
  EXPECT_NEAR(value("  name: merl\n  preset: reference\n"), decision_by_hand(b, s, {0.1}, 5.0, false, false), 1e-14);
  EXPECT_NEAR(value("  name: merl\n  preset: reference\n"),
              value("  name: merl\n  preset: none\n  lambdas: [0.1]\n  alpha: 0\n  weighting: raw\n  tau: 5\n"), 1e-14);
  EXPECT_NEAR(value("  name: pll\n  preset: reference\n"), decision_by_hand(b, s, {0.1}, 1.0, false, false), 1e-14);
  // Explicit keys win over the preset.
  EXPECT_NEAR(value("  name: merl\n  preset: reference\n  tau: 0.5\n  weighting: ipw\n"),
              decision_by_hand(b, s, {0.1}, 0.5, true, false), 1e-14);
}

TEST(DecisionSoftmax, ComputeGradientMatchesCentralFiniteDifferences) {
  const int64_t B = 8, M = 3;
  Batch b = random_batch(B, M, 7, 1);
  Scores s0 = random_scores(B, M, 8);
  for (const Variant& v : variants())
    for (const std::string& extra : {std::string("  alpha: 0\n"), std::string("  alpha: 0.6\n  weighting: raw\n")}) {
      SCOPED_TRACE(v.label + " " + extra);
      // ppl's batch λ* moves with the scores (the tie that sets the budget's step), and compute() holds it constant by
      // design: finite differences would see dλ*/dscore. Sample mode checks the same formula at a fixed λ.
      if (v.label == "ppl batch") continue;
      auto L = make(v.body + extra);
      LossContext ctx;
      if (v.sample) ctx.sample_lambda = {0.9, 0.25};
      const Reference ref = autograd_reference(*L, b, s0, ctx);
      torch::NoGradGuard no_grad;
      const double h = 1e-6;
      double worst = 0;
      for (int which = 0; which < 2; ++which)
        for (int64_t i = 0; i < B; ++i)
          for (int64_t j = 0; j < M; ++j) {
            Scores sp{s0.r_hat.clone(), s0.c_hat.clone()}, sm{s0.r_hat.clone(), s0.c_hat.clone()};
            (which ? sp.c_hat : sp.r_hat)[i][j] += h;
            (which ? sm.c_hat : sm.r_hat)[i][j] -= h;
            const double fd = (L->compute(b, sp, ctx).item<double>() - L->compute(b, sm, ctx).item<double>()) / (2 * h);
            const double g = (which ? ref.d_c : ref.d_r)[i][j].item<double>();
            worst = std::max(worst, std::abs(fd - g) / std::max(1.0, std::abs(fd)));
          }
      EXPECT_LT(worst, 1e-7);
      EXPECT_GT(max_abs(ref.d_r), 1e-4);  // not vacuous
      // The padding row gets no gradient.
      EXPECT_EQ(max_abs(ref.d_r[B - 1]) + max_abs(ref.d_c[B - 1]), 0.0);
    }
}

TEST(DecisionSoftmax, FusedPathMatchesComputeAndAutograd) {
  const int64_t B = 40, M = 4;
  Batch b = random_batch(B, M, 9, 3);
  Scores s = random_scores(B, M, 10);
  for (const Variant& v : variants())
    for (const std::string weighting : {"ipw", "raw"})
      for (const std::string alpha : {"0", "0.8"})
        for (int c = 0; c < 3; ++c) {
          SCOPED_TRACE(v.label + " " + weighting + " alpha " + alpha + " ctx " + std::to_string(c));
          auto L = make(v.body + "  weighting: " + weighting + "\n  alpha: " + alpha + "\n");
          LossContext ctx;
          if (v.sample) ctx.sample_lambda = {0.6, 0.05};
          if (c == 1) ctx.arm_propensity = {0.4, 0.3, 0.2, 0.1};
          if (c == 2) ctx.arm_rows = {10, 12, 8, 9}, ctx.total_weight = 39;  // a global batch's counts
          check_fused(*L, b, s, ctx);
        }
  // BCE prediction term on probability scores and binary labels.
  Batch bb = random_batch(B, M, 11, 2);
  bb.y_r = bb.y_r.gt(1.5).to(at::kDouble), bb.y_c = bb.y_c.gt(1.0).to(at::kDouble);
  Scores sp{random_scores(B, M, 12).r_hat.sigmoid(), random_scores(B, M, 13).c_hat.sigmoid()};
  check_fused(*make("  name: merl\n  tau: 0.05\n  revenue_loss: bce\n  cost_loss: bce\n"), bb, sp, {});
}

TEST(DecisionSoftmax, PaddingRowsAndShardsAndEmptyBatches) {
  const int64_t B = 30, M = 3;
  Batch b = random_batch(B, M, 14, 4);
  Scores s = random_scores(B, M, 15);
  // Garbage on the padding rows changes nothing.
  Batch b2 = b;
  b2.y_r = b.y_r.clone(), b2.y_c = b.y_c.clone();
  b2.y_r.narrow(0, B - 4, 4).fill_(1e6), b2.y_c.narrow(0, B - 4, 4).fill_(-1e3);
  Scores s2{s.r_hat.clone(), s.c_hat.clone()};
  s2.r_hat.narrow(0, B - 4, 4).fill_(50);
  for (const Variant& v : variants()) {
    SCOPED_TRACE(v.label);
    auto L = make(v.body + "  alpha: 0.5\n");
    LossContext ctx;
    if (v.sample) ctx.sample_lambda = {0.6, 0.05};
    const double full = L->compute(b, s, ctx).item<double>();
    EXPECT_NEAR(L->compute(b2, s2, ctx).item<double>(), full, 1e-13);
    EXPECT_NEAR(L->compute(rows(b, 0, B - 4), rows(s, 0, B - 4), ctx).item<double>(), full, 1e-13);
    at::Tensor value, d_r, d_c;
    ASSERT_TRUE(L->value_and_grad(b2, s2, ctx, value, d_r, d_c));
    EXPECT_EQ(max_abs(d_r.narrow(0, B - 4, 4)) + max_abs(d_c.narrow(0, B - 4, 4)), 0.0);

    // Shards: with the global batch's counts in the context (as the trainer sets them), the shards' values sum to the
    // global batch's loss. ppl on batch λ* needs the ranks' reductions, so it is checked in sample mode only.
    if (v.label != "ppl batch") {
      LossContext g = ctx;
      g.total_weight = double(B - 4);
      g.arm_rows.assign(size_t(M), 0.0);
      for (int64_t i = 0; i < B - 4; ++i) g.arm_rows[size_t(b.t[i].item<int64_t>())] += 1;
      double sum = 0;
      for (int64_t begin : {0, 13}) {
        const int64_t n = begin == 0 ? 13 : B - 13;
        sum += L->compute(rows(b, begin, n), rows(s, begin, n), g).item<double>();
      }
      EXPECT_NEAR(sum, full, 1e-13);
    }

    // A batch of padding only: value 0 and a zero gradient on both paths, no NaN.
    Batch pad = b;
    pad.weight = at::zeros({B}, f64());
    const Reference ref = autograd_reference(*L, pad, s, ctx);
    EXPECT_EQ(ref.value, 0.0);
    EXPECT_EQ(max_abs(ref.d_r) + max_abs(ref.d_c), 0.0);
    ASSERT_TRUE(L->value_and_grad(pad, s, ctx, value, d_r, d_c));
    EXPECT_EQ(value.item<double>(), 0.0);
    EXPECT_EQ(max_abs(d_r) + max_abs(d_c), 0.0);
  }
}

TEST(DecisionSoftmax, GradientStepMovesMassTowardGoodOutcomes) {
  // One row that received arm 1: a step against the gradient raises softmax(r̂ − λĉ)_1 when the net outcome is
  // positive and lowers it when it is negative.
  Batch b;
  b.x = at::zeros({1, 2}, f64());
  b.t = torch::tensor({1}, at::kLong);
  b.weight = at::ones({1}, f64());
  Scores s{torch::tensor({{0.3, -0.2, 0.5}}, f64()), torch::tensor({{0.1, 0.4, 0.9}}, f64())};
  const double lam = 1.0;
  auto p_obs = [&](const Scores& x, double tau) {
    return at::softmax((x.r_hat - lam * x.c_hat) / tau, 1)[0][1].item<double>();
  };
  struct Case {
    std::string body;
    double tau, y_r, y_c;
    int sign;  // +1: mass moves toward arm 1
  };
  for (const Case& c : {Case{"  name: pll\n  lambdas: [1.0]\n", 1.0, 2.0, 0.5, +1},
                        Case{"  name: pll\n  lambdas: [1.0]\n", 1.0, 0.2, 1.0, -1},
                        Case{"  name: merl\n  lambdas: [1.0]\n  tau: 0.5\n", 0.5, 2.0, 0.5, +1},
                        Case{"  name: merl\n  lambdas: [1.0]\n  tau: 0.5\n", 0.5, 0.2, 1.0, -1},
                        Case{"  name: ppl\n  budgets: [1.0]\n  lambda_source: sample\n", 1.0, 0.7, 3.0, +1}}) {
    SCOPED_TRACE(c.body + " y_r " + std::to_string(c.y_r));
    b.y_r = torch::tensor({c.y_r}, f64()), b.y_c = torch::tensor({c.y_c}, f64());
    auto L = make(c.body + "  alpha: 0\n");
    LossContext ctx;
    ctx.sample_lambda = {lam};
    at::Tensor value, d_r, d_c;
    ASSERT_TRUE(L->value_and_grad(b, s, ctx, value, d_r, d_c));
    EXPECT_EQ(d_r[0][1].item<double>() < 0, c.sign > 0);  // raising the observed arm's score lowers the loss
    const double eta = 0.05;
    Scores stepped{s.r_hat - eta * d_r, s.c_hat - eta * d_c};
    const double before = p_obs(s, c.tau), after = p_obs(stepped, c.tau);
    if (c.sign > 0)
      EXPECT_GT(after, before + 1e-6);
    else
      EXPECT_LT(after, before - 1e-6);
    EXPECT_LT(L->compute(b, stepped, ctx).item<double>(), value.item<double>());
  }
}

TEST(Merl, SmallTauApproachesTheArgmaxPolicy) {
  // Scores whose arm margins are >= 0.08 in r̂ − λĉ: at τ = 1e-3 the softmax is one-hot to exp(-80).
  const int64_t B = 60, M = 4;
  const double lam = 0.5;
  Batch b = random_batch(B, M, 16, 3);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(17);
  at::Tensor a = at::empty({B, M}, f64());
  for (int64_t i = 0; i < B; ++i)
    a.select(0, i).copy_(at::randperm(M, gen, at::TensorOptions().dtype(at::kLong)).to(at::kDouble) * 0.1);
  a += at::rand({B, M}, gen, f64()) * 0.02;
  at::Tensor c_hat = at::rand({B, M}, gen, f64());
  Scores s{a + lam * c_hat, c_hat};
  // The hard dual decision loss by hand: −(1/N) Σ u_i (y^r − λ y^c) 1[t_i = argmax_j a_ij].
  const std::vector<double> u = ipw_by_hand(b, M);
  const at::Tensor pi = a.argmax(1);
  double hard = 0, N = 0;
  for (int64_t i = 0; i < B; ++i) {
    N += b.weight[i].item<double>();
    if (pi[i].item<int64_t>() == b.t[i].item<int64_t>())
      hard -= u[size_t(i)] * (b.y_r[i].item<double>() - lam * b.y_c[i].item<double>());
  }
  hard /= N;
  ASSERT_GT(std::abs(hard), 0.05);
  std::vector<double> gaps;
  for (double tau : {2.0, 0.02, 1e-3}) {
    auto L = make("  name: merl\n  lambdas: [0.5]\n  alpha: 0\n  tau: " + std::to_string(tau) + "\n");
    const double v = L->compute(b, s, {}).item<double>();
    const double gap = std::abs(v - hard);
    if (!gaps.empty()) {
      EXPECT_LT(gap, gaps.back()) << "tau " << tau;  // the softmax policy approaches the argmax policy
    }
    gaps.push_back(gap);
    if (tau == 1e-3) {
      EXPECT_LT(gap, 1e-12);
      // ... and saturates: the gradient vanishes away from ties.
      at::Tensor value, d_r, d_c;
      ASSERT_TRUE(L->value_and_grad(b, s, {}, value, d_r, d_c));
      EXPECT_NEAR(value.item<double>(), hard, 1e-12);
      EXPECT_LT(max_abs(d_r), 1e-20);
    }
    if (tau == 1.0) {
      EXPECT_GT(gap, 1e-2);
    }
  }
}

TEST(Ppl, BatchLambdaMeetsTheTrainingBudget) {
  // A synthetic trial: arm shares about 0.5 / 0.3 / 0.2, costs rising with the arm; the budgets bind.
  const int64_t B = 3000, M = 3;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(18);
  Batch b;
  b.x = at::zeros({B, 1}, f64());
  const at::Tensor draw = at::rand({B}, gen, f64());
  b.t = draw.gt(0.5).to(at::kLong) + draw.gt(0.8).to(at::kLong);
  b.weight = at::ones({B}, f64());
  const at::Tensor arm = b.t.to(at::kDouble);
  b.y_r = at::rand({B}, gen, f64()) * (1 + arm);
  b.y_c = at::rand({B}, gen, f64()) * arm;
  at::Tensor step = torch::tensor({0.0, 0.5, 1.0}, f64());
  Scores s{at::rand({B, M}, gen, f64()) * (1 + step * 2), at::rand({B, M}, gen, f64()) * 0.2 + step};
  const double full_spend = spend_by_hand(b, s, 0.0);
  ASSERT_GT(full_spend, 0.3);
  const std::vector<double> budgets{0.3 * full_spend, 0.6 * full_spend};
  // The largest jump one row makes in the spend: the tolerance of matching a step function.
  const std::vector<double> u = ipw_by_hand(b, M);
  double jump = 0;
  for (int64_t i = 0; i < B; ++i) jump = std::max(jump, u[size_t(i)] * b.y_c[i].item<double>() / B);

  const at::Tensor ipw = loss::row_weights(b, s, {}, true);
  std::vector<double> lambdas;
  for (double budget : budgets) {
    const loss::LambdaSearch found = loss::primal_lambda(s.r_hat, s.c_hat, b, ipw, {}, budget);
    EXPECT_GT(found.lambda, 0.0);
    EXPECT_NEAR(spend_by_hand(b, s, found.lambda), budget, jump + 1e-4 * budget) << "budget " << budget;
    lambdas.push_back(found.lambda);
  }
  EXPECT_GT(lambdas[0], lambdas[1]);  // a tighter budget has a higher price
  const std::string keys =
      "  name: ppl\n  budgets: [" + num(budgets[0]) + ", " + num(budgets[1]) + "]\n  alpha: 0\n  tau: 0.2\n";
  // The loss uses exactly these λ*: its value is the formula at them, and not at nearby λ.
  const double v = make(keys)->compute(b, s, {}).item<double>();
  EXPECT_NEAR(v, decision_by_hand(b, s, lambdas, 0.2, true, true), 1e-12);
  EXPECT_GT(std::abs(v - decision_by_hand(b, s, {lambdas[0] * 1.1, lambdas[1]}, 0.2, true, true)), 1e-6);
  // weighting: raw changes u_i in the loss only; the search still prices the budget with IPW spend.
  EXPECT_NEAR(make(keys + "  weighting: raw\n")->compute(b, s, {}).item<double>(),
              decision_by_hand(b, s, lambdas, 0.2, false, true), 1e-12);
  // A budget above the spend of the λ = 0 policy does not bind: λ* = 0.
  EXPECT_NEAR(make("  name: ppl\n  budgets: [" + num(2 * full_spend) + "]\n  alpha: 0\n")
                  ->compute(b, s, {})
                  .item<double>(),
              decision_by_hand(b, s, {0.0}, 1.0, true, true), 1e-12);
  // The fused path agrees (λ* found the same way).
  check_fused(*make(keys), b, s, {});
}

TEST(Ppl, SampleModeUsesTheTrainersLambda) {
  const int64_t B = 25, M = 3;
  Batch b = random_batch(B, M, 19, 2);
  Scores s = random_scores(B, M, 20);
  auto L = make("  name: ppl\n  budgets: [0.3, 0.6]\n  lambda_source: sample\n  alpha: 0\n  tau: 0.7\n");
  LossContext ctx;
  ctx.sample_lambda = {0.8, 0.2};
  EXPECT_NEAR(L->compute(b, s, ctx).item<double>(), decision_by_hand(b, s, {0.8, 0.2}, 0.7, true, true), 1e-13);
  ctx.sample_lambda = {0.0, 3.0};
  EXPECT_NEAR(L->compute(b, s, ctx).item<double>(), decision_by_hand(b, s, {0.0, 3.0}, 0.7, true, true), 1e-13);
  // Missing or mismatched λ* is a DataError that says what to do.
  at::Tensor value, d_r, d_c;
  for (const std::vector<double>& bad : {std::vector<double>{}, std::vector<double>{0.5}}) {
    ctx.sample_lambda = bad;
    try {
      L->compute(b, s, ctx);
      ADD_FAILURE() << "no error for " << bad.size() << " values";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find("sample_lambda holds " + std::to_string(bad.size())), std::string::npos)
          << e.what();
    }
    EXPECT_THROW(L->value_and_grad(b, s, ctx, value, d_r, d_c), DataError);
  }
  ctx.sample_lambda = {0.5, -1.0};
  EXPECT_THROW(L->compute(b, s, ctx), DataError);
  // With the α·L_PL term.
  ctx.sample_lambda = {0.8, 0.2};
  EXPECT_NEAR(make("  name: ppl\n  budgets: [0.3, 0.6]\n  lambda_source: sample\n  alpha: 2\n  tau: 0.7\n")
                  ->compute(b, s, ctx)
                  .item<double>(),
              decision_by_hand(b, s, {0.8, 0.2}, 0.7, true, true) +
                  2 * make("  name: tsm_sl\n")->compute(b, s, ctx).item<double>(),
              1e-13);
}

TEST(DecisionSoftmax, BadConfigErrorsNameTheKey) {
  struct Case {
    std::string body, key;
  };
  for (const Case& c : {Case{"  name: merl\n  tau: 0\n", "loss.tau"}, Case{"  name: merl\n  tau: -2\n", "loss.tau"},
                        Case{"  name: ppl\n  budgets: [1]\n  tau: .nan\n", "loss.tau"},
                        Case{"  name: pll\n  tau: 2\n", "loss.tau"},  // pll has no temperature: unknown key
                        Case{"  name: ppl\n", "loss.budgets"}, Case{"  name: ppl\n  budgets: []\n", "loss.budgets"},
                        Case{"  name: ppl\n  budgets: [0.3, 0]\n", "loss.budgets"},
                        Case{"  name: ppl\n  budgets: [-1]\n", "loss.budgets"},
                        Case{"  name: ppl\n  budgets: [1]\n  lambda_source: epoch\n", "loss.lambda_source"},
                        Case{"  name: ppl\n  budgets: [1]\n  lambdas: [0.1]\n", "loss.lambdas"},
                        Case{"  name: pll\n  lambdas: [0.1, 0]\n", "loss.lambdas"},
                        Case{"  name: merl\n  lambdas: []\n", "loss.lambdas"},
                        Case{"  name: pll\n  alpha: -1\n", "loss.alpha"},
                        Case{"  name: merl\n  weighting: both\n", "loss.weighting"},
                        Case{"  name: ppl\n  budgets: [1]\n  preset: bidfcl\n", "loss.preset"},
                        Case{"  name: merl\n  tau: 2\n  taus: 2\n", "loss.taus"}}) {
    SCOPED_TRACE(c.body);
    const std::string msg = config_error(c.body);
    EXPECT_NE(msg.find(c.key), std::string::npos) << "message: " << msg;
  }
  // Complete configs read every key.
  for (const std::string body :
       {"  name: pll\n  preset: none\n  lambdas: [0.1]\n  alpha: 0.5\n  weighting: raw\n  revenue_loss: mse\n",
        "  name: merl\n  preset: reference\n  tau: 3\n  cost_weight: 0.5\n",
        "  name: ppl\n  budgets: [0.2, 0.4]\n  lambda_source: sample\n  tau: 0.1\n  alpha: 1\n  weighting: ipw\n"})
    EXPECT_EQ(config_error(body), "") << body;
}

TEST(DecisionSoftmax, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const at::Device cuda(at::kCUDA);
  const int64_t B = 500, M = 3;
  Batch b = random_batch(B, M, 21, 5);
  Scores s = random_scores(B, M, 22);
  Batch bc{b.x.to(cuda), b.t.to(cuda), b.y_r.to(cuda), b.y_c.to(cuda), b.weight.to(cuda)};
  Scores sc{s.r_hat.to(cuda), s.c_hat.to(cuda)};
  for (const Variant& v : variants()) {
    SCOPED_TRACE(v.label);
    auto L = make(v.body + "  alpha: 0.5\n");
    LossContext ctx;
    if (v.sample) ctx.sample_lambda = {0.6, 0.05};
    check_fused(*L, bc, sc, ctx);
    at::Tensor value, d_r, d_c, value_c, d_rc, d_cc;
    ASSERT_TRUE(L->value_and_grad(b, s, ctx, value, d_r, d_c));
    ASSERT_TRUE(L->value_and_grad(bc, sc, ctx, value_c, d_rc, d_cc));
    EXPECT_TRUE(d_rc.is_cuda());
    EXPECT_NEAR(value_c.item<double>(), value.item<double>(), 1e-12);
    EXPECT_LE(max_abs(d_rc.cpu() - d_r), 1e-12);
    EXPECT_LE(max_abs(d_cc.cpu() - d_c), 1e-12);
  }
}

// cost_head: calibrated (dfcl's default): the decision term moves r_hat only, so the cost gradient of every decision
// loss is exactly α·L_PL's, and the revenue gradient is the papers' form unchanged.
TEST(CostHead, CalibratedLeavesTheCostGradientToThePredictionTerm) {
  const int64_t B = 12, M = 3;
  Batch b = random_batch(B, M, 41, 1);
  Scores s = random_scores(B, M, 42);
  LossContext ctx;
  ctx.arm_propensity = {0.4, 0.3, 0.3};
  at::Tensor v_tsm, r_tsm, c_tsm;
  ASSERT_TRUE(make("  name: tsm_sl\n")->value_and_grad(b, s, ctx, v_tsm, r_tsm, c_tsm));
  for (const std::string body :
       {"  name: pll\n  alpha: 0.7\n", "  name: merl\n  tau: 0.3\n  alpha: 0.7\n",
        "  name: ppl\n  budgets: [0.5]\n  alpha: 0.7\n", "  name: ifd\n  alpha: 0.7\n  clip: none\n",
        "  name: ifd_softmax\n  alpha: 0.7\n  clip: none\n", "  name: pifd\n  budgets: [0.5]\n  alpha: 0.7\n  clip: none\n"}) {
    SCOPED_TRACE(body);
    auto cal = make(body + "  cost_head: calibrated\n"), paper = make(body + "  cost_head: decision\n");
    at::Tensor v1, r1, c1, v2, r2, c2;
    ASSERT_TRUE(cal->value_and_grad(b, s, ctx, v1, r1, c1));
    ASSERT_TRUE(paper->value_and_grad(b, s, ctx, v2, r2, c2));
    EXPECT_LE((c1 - 0.7 * c_tsm).abs().max().item<double>(), 1e-12) << "the cost head learns from L_PL only";
    EXPECT_LE((r1 - r2).abs().max().item<double>(), 1e-12) << "the revenue head gets the papers' gradient";
    EXPECT_GT((c2 - 0.7 * c_tsm).abs().max().item<double>(), 1e-6) << "the papers' form moves the cost head too";
    // compute() under autograd agrees with the fused gradient.
    at::Tensor r = s.r_hat.clone().requires_grad_(true), c = s.c_hat.clone().requires_grad_(true);
    cal->compute(b, Scores{r, c}, ctx).backward();
    EXPECT_LE((c.grad() - c1).abs().max().item<double>(), 1e-10);
    EXPECT_LE((r.grad() - r1).abs().max().item<double>(), 1e-10);
  }
  EXPECT_NE(config_error("  name: pll\n  cost_head: both\n").find("loss.cost_head is 'both'"), std::string::npos);
  EXPECT_NE(config_error("  name: ifd\n  cost_head: calibrated\n  cost_term: true\n").find("loss.cost_head=decision"),
            std::string::npos);
}
