// \brief TSM-SL and factual losses: closed forms, gradients and Hessian-vector products against finite
// differences (float64), padding and shard invariance, and L_PL's unbiasedness on synthetic RCT data.
#include <gtest/gtest.h>  // for TEST

#include <ATen/CPUGeneratorImpl.h>  // for at::CPUGeneratorImpl
#include <torch/torch.h>            // for torch::autograd::grad

#include <cmath>  // for std::log, std::sqrt

#include "core/config.h"       // for Config
#include "core/error.h"        // for ConfigError, DataError
#include "data/fixtures.h"     // for small_config
#include "data/generator.h"    // for Generator
#include "loss/fixtures.h"  // for make, f64, rows
#include "loss/loss.h"         // for make_loss, LossContext
#include "model/batch.h"       // for Batch, to_batch
#include "model/uplift_net.h"  // for UpliftNet

using namespace dfcl;
using loss::LossContext;
using model::Batch;
using model::Scores;

using namespace dfcl::loss_test;

namespace {


// A random batch of B rows over M arms; binary outcomes when `binary`.
Batch random_batch(int64_t B, int64_t F, int64_t M, uint64_t seed, bool binary = false) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Batch b;
  b.x = at::randn({B, F}, gen, f64());
  b.t = at::randint(M, {B}, gen, at::TensorOptions().dtype(at::kLong));
  if (binary) {
    b.y_r = at::randint(2, {B}, gen, f64());
    b.y_c = at::randint(2, {B}, gen, f64());
  } else {
    b.y_r = at::rand({B}, gen, f64()) * 3;
    b.y_c = at::rand({B}, gen, f64());
  }
  b.weight = at::ones({B}, f64());
  return b;
}

Scores random_scores(int64_t B, int64_t M, uint64_t seed, bool probabilities = false) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Scores s{at::randn({B, M}, gen, f64()), at::randn({B, M}, gen, f64())};
  if (probabilities) s.r_hat = s.r_hat.sigmoid(), s.c_hat = s.c_hat.sigmoid();
  return s;
}


double elem(double y, double p, bool bce) {
  return bce ? -(y * std::log(p) + (1 - y) * std::log(1 - p)) : (y - p) * (y - p);
}
}  // namespace

TEST(TsmSl, MatchesEquationThreeOnASmallBatch) {
  const int64_t B = 9, M = 3;
  for (bool bce : {false, true}) {
    Batch b = random_batch(B, 2, M, 11, bce);
    b.t = torch::tensor({0, 1, 2, 0, 1, 0, 2, 0, 0}, at::kLong);  // arm shares 5/9, 2/9, 2/9
    b.weight = torch::tensor({1., 1., 1., 1., 0., 1., 1., 1., 0.}, f64());
    Scores s = random_scores(B, M, 12, bce);
    // Eq. 3, by hand: per-arm mean of the factual error (weights count rows), averaged over the M arms.
    double sum[M] = {}, n[M] = {}, all = 0, all_n = 0;
    for (int64_t i = 0; i < B; ++i) {
      const int64_t j = b.t[i].item<int64_t>();
      const double w = b.weight[i].item<double>();
      const double e = elem(b.y_r[i].item<double>(), s.r_hat[i][j].item<double>(), bce) +
                       elem(b.y_c[i].item<double>(), s.c_hat[i][j].item<double>(), bce);
      sum[j] += w * e, n[j] += w, all += w * e, all_n += w;
    }
    double l_pl = 0;
    for (int j = 0; j < M; ++j) l_pl += sum[j] / n[j] / M;
    const std::string keys = bce ? "  revenue_loss: bce\n  cost_loss: bce\n" : "";
    EXPECT_NEAR(make("  name: tsm_sl\n" + keys)->compute(b, s, {}).item<double>(), l_pl, 1e-13);
    EXPECT_NEAR(make("  name: factual\n" + keys)->compute(b, s, {}).item<double>(), all / all_n, 1e-13);
    // Inverse-propensity form: N_j = p_j * N.
    LossContext ctx;
    ctx.arm_propensity = {0.5, 0.3, 0.2};
    double ipw = 0;
    for (int j = 0; j < M; ++j) ipw += sum[j] / (ctx.arm_propensity[j] * all_n) / M;
    EXPECT_NEAR(make("  name: tsm_sl\n" + keys)->compute(b, s, ctx).item<double>(), ipw, 1e-13);
  }
}

TEST(TsmSl, EmptyArmContributesZeroAndOutcomeWeightsScale) {
  Batch b = random_batch(4, 2, 3, 1);
  b.t = torch::tensor({0, 0, 1, 1}, at::kLong);  // arm 2 empty
  Scores s = random_scores(4, 3, 2);
  auto both = make("  name: tsm_sl\n")->compute(b, s, {}).item<double>();
  auto rev = make("  name: tsm_sl\n  cost_weight: 0\n")->compute(b, s, {}).item<double>();
  auto cost = make("  name: tsm_sl\n  revenue_weight: 0\n")->compute(b, s, {}).item<double>();
  auto scaled = make("  name: tsm_sl\n  revenue_weight: 2\n  cost_weight: 0.5\n")->compute(b, s, {}).item<double>();
  EXPECT_NEAR(both, rev + cost, 1e-14);
  EXPECT_NEAR(scaled, 2 * rev + 0.5 * cost, 1e-14);
  double expect_rev = 0;
  for (int64_t j : {0, 1}) {
    double e = 0;
    for (int64_t i = 2 * j; i < 2 * j + 2; ++i)
      e += std::pow(b.y_r[i].item<double>() - s.r_hat[i][j].item<double>(), 2);
    expect_rev += e / 2 / 3;  // M = 3 even though arm 2 has no rows
  }
  EXPECT_NEAR(rev, expect_rev, 1e-14);
}

TEST(TsmSl, GradientMatchesCentralFiniteDifferences) {
  struct Case {
    std::string loss;
    bool shared, arm_column, binary;
    std::string act;
  };
  for (const Case& c : {Case{"tsm_sl", true, false, false, "tanh"}, Case{"tsm_sl", false, true, false, "relu"},
                        Case{"tsm_sl", true, true, true, "elu"}, Case{"factual", true, false, false, "gelu"},
                        Case{"factual", false, false, true, "tanh"}}) {
    SCOPED_TRACE(c.loss + " " + c.act + (c.binary ? " bce" : " mse") + (c.shared ? " shared" : " separate"));
    model::UpliftNetConfig cfg;
    cfg.features = 3, cfg.arms = 3, cfg.trunk = {4}, cfg.head = {3};
    cfg.shared_trunk = c.shared, cfg.arm_column = c.arm_column, cfg.activation = c.act;
    if (c.binary) cfg.revenue_output = cfg.cost_output = "sigmoid";
    model::UpliftNet net(cfg, 5, at::kDouble);
    Batch b = random_batch(9, 3, 3, 6, c.binary);
    b.weight[4] = 0.0;  // a padding row
    auto L = make("  name: " + c.loss + "\n" + (c.binary ? "  revenue_loss: bce\n  cost_loss: bce\n" : ""));
    LossContext ctx;
    auto f = [&](const at::Tensor& theta) { return L->compute(b, net.forward(theta, b.x), ctx); };
    at::Tensor theta = net.flat().detach().clone().requires_grad_(true);
    at::Tensor g = torch::autograd::grad({f(theta)}, {theta})[0];
    torch::NoGradGuard no_grad;
    const double h = 1e-6;
    double worst = 0;
    for (int64_t i = 0; i < theta.numel(); ++i) {
      at::Tensor tp = theta.detach().clone(), tm = theta.detach().clone();
      tp[i] += h, tm[i] -= h;
      const double fd = (f(tp).item<double>() - f(tm).item<double>()) / (2 * h);
      worst = std::max(worst, std::abs(fd - g[i].item<double>()) / std::max(1.0, std::abs(fd)));
    }
    EXPECT_LT(worst, 1e-7) << "over " << theta.numel() << " parameters";
    EXPECT_GT(g.abs().max().item<double>(), 1e-3);  // the check is not vacuous
  }
}

TEST(TsmSl, HessianVectorProductMatchesFiniteDifferenceOfGradients) {
  model::UpliftNetConfig cfg;
  cfg.features = 3, cfg.arms = 2, cfg.trunk = {5}, cfg.head = {3}, cfg.activation = "tanh", cfg.arm_column = true;
  model::UpliftNet net(cfg, 9, at::kDouble);
  Batch b = random_batch(12, 3, 2, 10);
  auto L = make("  name: tsm_sl\n");
  auto grad = [&](const at::Tensor& theta, bool create_graph) {
    return torch::autograd::grad({L->compute(b, net.forward(theta, b.x), {})}, {theta}, {}, true, create_graph)[0];
  };
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const at::Tensor v = at::randn({net.num_parameters()}, gen, f64());
  at::Tensor theta = net.flat().detach().clone().requires_grad_(true);
  at::Tensor hv = torch::autograd::grad({(grad(theta, true) * v).sum()}, {theta})[0];
  const double eps = 1e-5;
  at::Tensor tp = (theta.detach() + eps * v).requires_grad_(true), tm = (theta.detach() - eps * v).requires_grad_(true);
  at::Tensor fd = (grad(tp, false) - grad(tm, false)) / (2 * eps);
  EXPECT_LT((hv - fd).abs().max().item<double>(), 1e-6 * std::max(1.0, fd.abs().max().item<double>()));
  EXPECT_GT(hv.abs().max().item<double>(), 1e-3);
}

TEST(TsmSl, PaddingRowsChangeNothing) {
  Batch real = random_batch(6, 2, 3, 21);
  Scores s_real = random_scores(6, 3, 22);
  Batch pad = random_batch(4, 2, 3, 23);
  pad.weight.zero_();
  pad.y_r.mul_(1000);  // wild labels on padding rows must not matter
  Scores s_pad = random_scores(4, 3, 24);
  Batch both{at::cat({real.x, pad.x}), at::cat({real.t, pad.t}), at::cat({real.y_r, pad.y_r}),
             at::cat({real.y_c, pad.y_c}), at::cat({real.weight, pad.weight})};
  LossContext ipw;
  ipw.arm_propensity = {0.2, 0.3, 0.5};
  for (const std::string name : {"tsm_sl", "factual"})
    for (const LossContext& ctx : {LossContext{}, ipw}) {
      auto L = make("  name: " + name + "\n");
      at::Tensor r = s_real.r_hat.clone().requires_grad_(true),
                 rp = at::cat({s_real.r_hat, s_pad.r_hat}).requires_grad_(true);
      at::Tensor a = L->compute(real, Scores{r, s_real.c_hat}, ctx);
      at::Tensor c = L->compute(both, Scores{rp, at::cat({s_real.c_hat, s_pad.c_hat})}, ctx);
      EXPECT_NEAR(a.item<double>(), c.item<double>(), 1e-14) << name;
      at::Tensor ga = torch::autograd::grad({a}, {r})[0], gc = torch::autograd::grad({c}, {rp})[0];
      EXPECT_TRUE(torch::allclose(ga, gc.narrow(0, 0, 6), 0, 1e-15)) << name;
      EXPECT_EQ(gc.narrow(0, 6, 4).abs().max().item<double>(), 0.0) << name;
    }
}

TEST(TsmSl, ShardLossesSumToTheGlobalBatchLoss) {
  Batch b = random_batch(10, 2, 3, 31);
  Scores s = random_scores(10, 3, 32);
  for (const std::string name : {"tsm_sl", "factual"}) {
    auto L = make("  name: " + name + "\n");
    LossContext global;  // what the trainer all-reduces: per-arm counts and the total weight
    global.arm_rows.assign(3, 0);
    for (int64_t i = 0; i < 10; ++i) global.arm_rows[size_t(b.t[i].item<int64_t>())] += 1;
    global.total_weight = 10;
    const double full = L->compute(b, s, {}).item<double>();
    const double split = L->compute(rows(b, 0, 4), rows(s, 0, 4), global).item<double>() +
                         L->compute(rows(b, 4, 6), rows(s, 4, 6), global).item<double>();
    EXPECT_NEAR(full, split, 1e-14) << name;
    LossContext ipw = global;
    ipw.arm_rows.clear();
    ipw.arm_propensity = {0.2, 0.3, 0.5};
    LossContext ipw_local;
    ipw_local.arm_propensity = ipw.arm_propensity;
    EXPECT_NEAR(L->compute(b, s, ipw_local).item<double>(),
                L->compute(rows(b, 0, 4), rows(s, 0, 4), ipw).item<double>() +
                    L->compute(rows(b, 4, 6), rows(s, 4, 6), ipw).item<double>(),
                1e-14)
        << name;
  }
}

// Theorem 1 (spec §3.2): on RCT data E[L_PL] equals the full-table error over all users and all arms,
// whatever the arm shares; the plain factual loss weights arms by their shares instead. Noise is set so
// observed revenue is the potential outcome itself; the cost draw is Bernoulli(q) x v_j, whose variance
// v_j^2 q (1 - q) = c (v_j - c) is added to the cost target.
TEST(TsmSl, UnbiasedForTheFullTableErrorOnRctData) {
  data::GeneratorConfig gc = test::small_config(200000, 0, 6, 3, 77);
  gc.rct_propensity = {0.6, 0.25, 0.15};
  gc.revenue_noise = 0;
  gc.purchase_rate = 1;
  data::Generator gen(gc);
  data::Table t;
  gen.fill(0, gen.rows(), t, 0);
  Batch b = model::to_batch(t, at::kDouble);
  const int64_t N = b.rows(), M = 3;
  const at::Tensor R = torch::from_blob(t.true_revenue.data(), {N, M}, at::kFloat).to(at::kDouble);
  const at::Tensor C = torch::from_blob(t.true_cost.data(), {N, M}, at::kFloat).to(at::kDouble);
  ASSERT_TRUE(torch::equal(b.y_r, R.gather(1, b.t.unsqueeze(1)).squeeze(1)));  // y_r is r_{i,t_i} exactly

  model::UpliftNetConfig cfg;
  cfg.features = 6, cfg.arms = 3, cfg.trunk = {16}, cfg.activation = "tanh";
  model::UpliftNet net(cfg, 7, at::kDouble);
  torch::NoGradGuard no_grad;
  Scores s = net.forward(b.x);
  const at::Tensor v = torch::tensor({0.0, 1.0, 2.0}, f64());  // default arm values j
  const double full_r = (R - s.r_hat).pow(2).mean().item<double>();
  const double full_c = ((C - s.c_hat).pow(2) + C * (v - C)).mean().item<double>();

  // Sampling error of the per-arm means: SE^2 = sum_j Var(e | t = j) / (M^2 N_j).
  auto arm_se = [&](const at::Tensor& e) {
    double var = 0;
    for (int64_t j = 0; j < M; ++j) {
      at::Tensor ej = e.masked_select(b.t.eq(j));
      var += ej.var().item<double>() / double(ej.numel()) / double(M * M);
    }
    return std::sqrt(var);
  };
  const at::Tensor e_r = (b.y_r - s.r_hat.gather(1, b.t.unsqueeze(1)).squeeze(1)).pow(2);
  const at::Tensor e_c = (b.y_c - s.c_hat.gather(1, b.t.unsqueeze(1)).squeeze(1)).pow(2);
  const at::Tensor p = torch::tensor({0.6, 0.25, 0.15}, f64()).index_select(0, b.t);
  struct Part {
    std::string keys;
    double target;
    at::Tensor e;
    bool factual_biased;  // arm errors differ enough that share-weighting shows
  };
  for (const Part& part :
       {Part{"  cost_weight: 0\n", full_r, e_r, false}, Part{"  revenue_weight: 0\n", full_c, e_c, true},
        Part{"", full_r + full_c, e_r + e_c, true}}) {
    SCOPED_TRACE(part.keys.empty() ? "revenue + cost" : part.keys);
    const double se = arm_se(part.e);
    ASSERT_LT(se, 0.01 * part.target);  // the test has power
    const double l_pl = make("  name: tsm_sl\n" + part.keys)->compute(b, s, {}).item<double>();
    EXPECT_LT(std::abs(l_pl - part.target), 4 * se) << "L_PL " << l_pl << " full-table " << part.target << " SE " << se;
    // Inverse-propensity form, N_j = p_j N: SE of a plain mean of e_i / (M p_{t_i}).
    LossContext ctx;
    ctx.arm_propensity = {0.6, 0.25, 0.15};
    const double se_ipw = (part.e / (p * double(M))).std().item<double>() / std::sqrt(double(N));
    const double l_ipw = make("  name: tsm_sl\n" + part.keys)->compute(b, s, ctx).item<double>();
    EXPECT_LT(std::abs(l_ipw - part.target), 4 * se_ipw) << "IPW " << l_ipw << " SE " << se_ipw;
    const double l_f = make("  name: factual\n" + part.keys)->compute(b, s, {}).item<double>();
    if (part.factual_biased) {
      EXPECT_GT(std::abs(l_f - part.target), 20 * se) << "factual " << l_f;
    }
    std::cout << "[ info     ] " << (part.keys.empty() ? "both" : part.keys.substr(2, part.keys.size() - 3))
              << ": full-table " << part.target << ", L_PL " << l_pl << " (SE " << se << "), IPW " << l_ipw
              << ", factual " << l_f << "\n";
  }
}

TEST(LossRegistry, KnowsTheBuiltinsAndRejectsUnknownNames) {
  const auto names = loss::loss_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "tsm_sl"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "factual"), names.end());
  EXPECT_EQ(make("  name: tsm_sl\n")->name(), "tsm_sl");
  EXPECT_EQ(make("  name: factual\n")->name(), "factual");
  EXPECT_EQ(loss::make_loss(Config::from_string("{}").sub("loss"))->name(), "tsm_sl");  // the default
  try {
    make("  name: tsm_sll\n");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("loss.name: unknown loss 'tsm_sll'"), std::string::npos) << e.what();
    // Every registered name is listed, sorted.
    std::string known = "known losses: ";
    for (size_t i = 0; i < names.size(); ++i) known += (i ? ", " : "") + names[i];
    EXPECT_NE(std::string(e.what()).find(known), std::string::npos) << e.what();
  }
  try {
    make("  name: tsm_sl\n  cost_loss: huber\n");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("loss.cost_loss: unknown outcome loss 'huber'"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make("  name: tsm_sl\n  revenue_weight: 0\n  cost_weight: 0\n"), ConfigError);
  EXPECT_THROW(loss::register_loss("tsm_sl", nullptr), ConfigError);
  // A new loss is one registration away (here one that builds the factual loss).
  loss::register_loss("test_only", [](const Config&) { return loss::make_loss(Config::from_string("name: factual")); });
  EXPECT_EQ(make("  name: test_only\n")->name(), "factual");
}

TEST(LossRegistry, BadInputsAreDataErrors) {
  auto L = make("  name: tsm_sl\n  revenue_loss: bce\n");
  Batch b = random_batch(5, 2, 3, 41);  // revenue labels in [0, 3)
  Scores s = random_scores(5, 3, 42, true);
  EXPECT_THROW(L->compute(b, s, {}), DataError);
  auto mse = make("  name: tsm_sl\n");
  EXPECT_THROW(mse->compute(b, random_scores(5, 2, 1), {}), DataError);  // arm outside the scores
  EXPECT_THROW(mse->compute(b, random_scores(4, 3, 1), {}), DataError);  // row count
  LossContext ctx;
  ctx.arm_propensity = {0.5, 0.5};
  EXPECT_THROW(mse->compute(b, random_scores(5, 3, 1), ctx), DataError);
}

// On a GPU host: the batch, the forward and L_PL with its gradient give the CPU's numbers (float64).
TEST(TsmSl, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  data::Generator gen(test::small_config(3000, 0, 6, 3, 5));
  data::Table t;
  gen.fill(0, gen.rows(), t, 0);
  const at::Device cuda(at::kCUDA, 0);
  Batch cpu = model::to_batch(t, at::kDouble), dev = model::to_batch(t, at::kDouble, cuda);
  EXPECT_TRUE(dev.x.is_cuda() && dev.t.is_cuda() && dev.weight.is_cuda());
  model::UpliftNetConfig cfg = model::UpliftNetConfig::preset("dfcl_official", 6, 3);
  cfg.revenue_output = cfg.cost_output = "softplus";
  for (bool shared : {true, false}) {
    cfg.shared_trunk = shared;
    model::UpliftNet net_cpu(cfg, 3, at::kDouble), net_dev(cfg, 3, at::kDouble, cuda);
    for (const std::string name : {"tsm_sl", "factual"}) {
      auto L = make("  name: " + name + "\n");
      at::Tensor lc = L->compute(cpu, net_cpu.forward(cpu.x), {}), ld = L->compute(dev, net_dev.forward(dev.x), {});
      EXPECT_NEAR(lc.item<double>(), ld.item<double>(), 1e-10 * lc.item<double>()) << name;
      at::Tensor gc = torch::autograd::grad({lc}, {net_cpu.flat()})[0];
      at::Tensor gd = torch::autograd::grad({ld}, {net_dev.flat()})[0];
      EXPECT_TRUE(torch::allclose(gc, gd.cpu(), 1e-9, 1e-12)) << name;
    }
  }
}
