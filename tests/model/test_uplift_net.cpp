// \brief UpliftNet: functional forward against an nn::Linear reference, presets, layout, init, save/load, config
// errors.
#include <ATen/CPUGeneratorImpl.h>  // for at::CPUGeneratorImpl
#include <gtest/gtest.h>            // for TEST
#include <torch/torch.h>            // for torch::nn::Linear

#include <cmath>       // for std::exp, std::log1p, std::sqrt
#include <fstream>     // for std::ofstream
#include <functional>  // for std::function

#include "core/config.h"       // for Config
#include "core/error.h"        // for ConfigError, DataError, IoError
#include "data/fixtures.h"     // for small_config, temp_path
#include "data/generator.h"    // for Generator
#include "model/batch.h"       // for to_batch
#include "model/uplift_net.h"  // for UpliftNet

using namespace dfcl;
using model::UpliftNet;
using model::UpliftNetConfig;

namespace {
UpliftNetConfig small(int features, int arms, std::vector<int> trunk, std::vector<int> head, bool shared,
                      bool arm_column = false, const std::string& act = "relu") {
  UpliftNetConfig c;
  c.features = features, c.arms = arms, c.trunk = std::move(trunk), c.head = std::move(head);
  c.shared_trunk = shared, c.arm_column = arm_column, c.activation = act;
  return c;
}

at::Tensor reference_activation(const std::string& name, const at::Tensor& x) {
  if (name == "relu") return torch::nn::ReLU()(x);
  if (name == "leaky_relu") return torch::nn::LeakyReLU()(x);
  if (name == "elu") return torch::nn::ELU()(x);
  if (name == "gelu") return torch::nn::GELU()(x);
  if (name == "tanh") return torch::nn::Tanh()(x);
  ADD_FAILURE() << "no reference for " << name;
  return x;
}

// Module-style forward of head k: an nn::Linear per layer, weights copied from the flat views; the arm
// column is appended with torch::cat as in the DFCL reference model. Returns the raw output (B).
at::Tensor reference_head(const UpliftNet& net, const at::Tensor& x, int64_t k) {
  const UpliftNetConfig& c = net.config();
  torch::NoGradGuard no_grad;
  auto linear = [&](const std::string& name, bool stacked, const at::Tensor& in) {
    at::Tensor W = net.parameter(net.flat(), name + ".weight"), b = net.parameter(net.flat(), name + ".bias");
    if (stacked) W = W[k], b = b[k];
    torch::nn::Linear lin(torch::nn::LinearOptions(W.size(1), W.size(0)));
    lin->to(at::kDouble);
    lin->weight.copy_(W);
    lin->bias.copy_(b);
    return lin(in);
  };
  at::Tensor h = x;
  for (size_t l = 0; l < c.trunk.size(); ++l)
    h = reference_activation(c.activation, linear("trunk." + std::to_string(l), !c.shared_trunk, h));
  for (size_t l = 0; l <= c.head.size(); ++l) {
    if (l == 0 && c.arm_column) h = torch::cat({h, torch::full({h.size(0), 1}, double(k % c.arms), h.options())}, 1);
    h = linear("heads." + std::to_string(l), true, h);
    if (l < c.head.size()) h = reference_activation(c.activation, h);
  }
  return h.squeeze(1);
}

at::Tensor features(int64_t rows, int64_t f, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn({rows, f}, gen, at::TensorOptions().dtype(at::kDouble));
}
}  // namespace

TEST(UpliftNet, FunctionalForwardMatchesModuleReference) {
  const at::Tensor x = features(11, 6, 3);
  for (bool shared : {true, false})
    for (bool arm_column : {false, true})
      for (const std::string act : {"relu", "leaky_relu", "elu", "gelu", "tanh"})
        for (auto widths :
             std::vector<std::pair<std::vector<int>, std::vector<int>>>{{{5, 4}, {3}}, {{}, {}}, {{7}, {}}}) {
          SCOPED_TRACE(::testing::Message() << "shared=" << shared << " arm_column=" << arm_column << " act=" << act
                                            << " trunk=" << widths.first.size() << " head=" << widths.second.size());
          UpliftNet net(small(6, 3, widths.first, widths.second, shared, arm_column, act), 17, at::kDouble);
          const at::Tensor z = net.logits(net.flat(), x);
          ASSERT_EQ(z.sizes(), at::IntArrayRef({11, 6}));
          for (int64_t k = 0; k < 6; ++k) {
            at::Tensor ref = reference_head(net, x, k);
            EXPECT_LT((z.select(1, k) - ref).abs().max().item<double>(), 1e-12) << "head " << k;
          }
          model::Scores s = net.forward(x);
          EXPECT_TRUE(torch::allclose(s.r_hat, z.narrow(1, 0, 3), 0, 0));
          EXPECT_TRUE(torch::allclose(s.c_hat, z.narrow(1, 3, 3), 0, 0));
        }
}

// The hand-written forward-mode derivative J v against autograd's (the double-backward trick: d/dy <Jᵀy, v>) in
// float64, for every layout (shared and separate trunks, stacked heads on 2-D and 3-D inputs, the arm column), every
// activation and every output transform.
TEST(UpliftNet, JvpMatchesAutograd) {
  struct Case {
    UpliftNetConfig c;
    std::string rev, cost;
  };
  std::vector<Case> cases;
  for (const std::string& act : {"relu", "leaky_relu", "elu", "gelu", "tanh"})
    cases.push_back({small(4, 3, {6, 5}, {}, true, false, act), "softplus", "sigmoid"});
  cases.push_back({small(4, 3, {6}, {5, 3}, true, true, "tanh"), "identity", "softplus"});
  cases.push_back({small(4, 2, {6, 5}, {3}, false, false, "elu"), "sigmoid", "identity"});
  cases.push_back({small(4, 2, {}, {}, true, false, "relu"), "identity", "identity"});
  for (Case& k : cases) {
    k.c.revenue_output = k.rev, k.c.cost_output = k.cost;
    UpliftNet net(k.c, 3, at::kDouble);
    torch::manual_seed(4);
    const at::Tensor x = torch::randn({7, 4}, at::kDouble);
    const at::Tensor th = net.flat().detach().clone().requires_grad_(true);
    const at::Tensor v = torch::randn_like(th);
    const model::Scores s = net.forward(th, x);
    const at::Tensor y = at::cat({s.r_hat, s.c_hat}, 1);
    const at::Tensor d = at::zeros_like(y).requires_grad_(true);
    const at::Tensor vjp = torch::autograd::grad({y}, {th}, {d}, true, true)[0];
    const at::Tensor want = torch::autograd::grad({vjp}, {d}, {v})[0];
    const model::Scores t = net.jvp(net.flat().detach(), x, v);
    const at::Tensor got = at::cat({t.r_hat, t.c_hat}, 1);
    EXPECT_LT((got - want).abs().max().item<double>(), 1e-12 * (1 + want.abs().max().item<double>()))
        << k.c.activation << " shared " << k.c.shared_trunk << " arm column " << k.c.arm_column;
  }
}

TEST(UpliftNet, FunctionalForwardUsesTheVectorItIsGiven) {
  UpliftNet net(small(4, 2, {6}, {3}, true), 1, at::kDouble);
  const at::Tensor x = features(5, 4, 9);
  at::Tensor other = net.init_parameters(2).to(at::kDouble);
  UpliftNet twin(small(4, 2, {6}, {3}, true), 2, at::kDouble);
  EXPECT_TRUE(torch::equal(net.forward(other, x).r_hat, twin.forward(x).r_hat));
  EXPECT_FALSE(torch::equal(net.forward(x).r_hat, twin.forward(x).r_hat));
}

TEST(UpliftNet, PresetShapesAndParameterCounts) {
  for (const std::string preset : {"criteo", "dfcl_official"})
    for (bool shared : {true, false})
      for (int arms : {2, 5}) {
        UpliftNetConfig c = UpliftNetConfig::preset(preset, 12, arms);
        c.shared_trunk = shared;
        UpliftNet net(c, 3);
        at::Tensor x = features(7, 12, 1).to(at::kFloat);
        model::Scores s = net.forward(x);
        EXPECT_EQ(s.r_hat.sizes(), at::IntArrayRef({7, arms}));
        EXPECT_EQ(s.c_hat.sizes(), at::IntArrayRef({7, arms}));
        EXPECT_EQ(s.r_hat.scalar_type(), at::kFloat);
        EXPECT_EQ(net.num_parameters(), c.num_parameters());
        EXPECT_EQ(net.flat().numel(), c.num_parameters());
      }
  // DFCL official (spec §3.1): 1,651 in the trunk plus 4 x 8,321 in the heads = 34,935.
  UpliftNet official(UpliftNetConfig::preset("dfcl_official", 12, 2), 0);
  EXPECT_EQ(official.num_parameters(), 34935);
  const auto& e = official.layout().entries();
  EXPECT_EQ(e[0].name, "trunk.0.weight");
  EXPECT_EQ(e[0].shape, (std::vector<int64_t>{127, 12}));
  EXPECT_EQ(e[0].numel + e[1].numel, 1651);
  EXPECT_EQ(e[2].shape, (std::vector<int64_t>{4, 64, 128}));  // Linear(128, 64) per head: 127 + the arm column
  int64_t head_params = 0;
  for (size_t i = 2; i < e.size(); ++i) head_params += e[i].numel;
  EXPECT_EQ(head_params, 4 * 8321);
  // Criteo (Bi-DFCL): 12 -> 64 -> 32 -> 32 -> 4 outputs.
  EXPECT_EQ(UpliftNet(UpliftNetConfig::preset("criteo", 12, 2), 0).num_parameters(),
            (12 + 1) * 64 + (64 + 1) * 32 + (32 + 1) * 32 + 4 * (32 + 1));
  // Separate MLPs: every head owns a whole 12 -> 64 -> 32 -> 32 -> 1 network.
  UpliftNetConfig sep = UpliftNetConfig::preset("criteo", 12, 2);
  sep.shared_trunk = false;
  EXPECT_EQ(UpliftNet(sep, 0).num_parameters(), 4 * ((12 + 1) * 64 + (64 + 1) * 32 + (32 + 1) * 32 + (32 + 1)));
}

TEST(UpliftNet, LayoutIsContiguousAndViewsShareTheFlatVector) {
  UpliftNet net(small(5, 3, {4, 3}, {2}, false, true), 8);
  int64_t next = 0;
  for (const auto& e : net.layout().entries()) {
    EXPECT_EQ(e.offset, next) << e.name;
    next += e.numel;
  }
  EXPECT_EQ(next, net.num_parameters());
  std::vector<std::string> names;
  for (const auto& kv : net.named_parameters()) names.push_back(kv.first);
  EXPECT_EQ(names, (std::vector<std::string>{"trunk.0.weight", "trunk.0.bias", "trunk.1.weight", "trunk.1.bias",
                                             "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias"}));
  EXPECT_EQ(net.parameter(net.flat(), "heads.0.weight").sizes(), at::IntArrayRef({6, 2, 4}));
  {
    torch::NoGradGuard no_grad;
    net.named_parameters()[5].second.fill_(0.25);  // heads.0.bias
  }
  const auto& e = net.layout().entries()[5];
  EXPECT_TRUE(torch::equal(net.flat().narrow(0, e.offset, e.numel), torch::full({e.numel}, 0.25f)));
  EXPECT_TRUE(net.flat().requires_grad());
  EXPECT_THROW(net.parameter(net.flat(), "heads.9.weight"), DataError);
}

TEST(UpliftNet, OutputTransforms) {
  const at::Tensor x = features(9, 4, 5);
  UpliftNetConfig base = small(4, 3, {5}, {}, true);
  UpliftNet identity_net(base, 4, at::kDouble);
  const at::Tensor z = identity_net.logits(identity_net.flat(), x);
  auto softplus = [](double v) { return std::log1p(std::exp(v)); };
  auto sigmoid = [](double v) { return 1 / (1 + std::exp(-v)); };
  auto identity = [](double v) { return v; };
  struct Case {
    std::string r, c;
    std::function<double(double)> fr, fc;
  };
  for (const Case& cs :
       {Case{"identity", "softplus", identity, softplus}, Case{"sigmoid", "identity", sigmoid, identity},
        Case{"softplus", "sigmoid", softplus, sigmoid}}) {
    UpliftNetConfig c = base;
    c.revenue_output = cs.r, c.cost_output = cs.c;
    model::Scores s = UpliftNet(c, 4, at::kDouble).forward(x);
    for (int64_t i = 0; i < 9; ++i)
      for (int64_t j = 0; j < 3; ++j) {
        EXPECT_NEAR(s.r_hat[i][j].item<double>(), cs.fr(z[i][j].item<double>()), 1e-14) << cs.r;
        EXPECT_NEAR(s.c_hat[i][j].item<double>(), cs.fc(z[i][3 + j].item<double>()), 1e-14) << cs.c;
      }
  }
}

TEST(UpliftNet, InitIsDeterministicAndInTheLinearRange) {
  UpliftNetConfig c = UpliftNetConfig::preset("dfcl_official", 12, 2);
  UpliftNet a(c, 42), b(c, 42), d(c, 43);
  EXPECT_TRUE(torch::equal(a.flat(), b.flat()));
  EXPECT_FALSE(torch::equal(a.flat(), d.flat()));
  // Precision-independent: the float vector is the double draw rounded.
  UpliftNet a64(c, 42, at::kDouble);
  EXPECT_TRUE(torch::equal(a.flat(), a64.flat().to(at::kFloat)));
  // U(-1/sqrt(fan_in), 1/sqrt(fan_in)) per entry: within the bound, mean ~0, variance bound^2 / 3.
  const std::vector<int64_t> fan_in{12, 12, 128, 128, 64, 64};
  for (size_t i = 0; i < fan_in.size(); ++i) {
    const double bound = 1 / std::sqrt(double(fan_in[i]));
    at::Tensor p = a64.named_parameters()[i].second.detach();
    EXPECT_LE(p.abs().max().item<double>(), bound);
    if (p.numel() > 1000) {
      const double n = double(p.numel()), var = bound * bound / 3;
      EXPECT_NEAR(p.mean().item<double>(), 0, 5 * std::sqrt(var / n));
      EXPECT_NEAR(p.pow(2).mean().item<double>(), var, 5 * std::sqrt(var * var * 0.8 / n));  // Var(u^2) = 4 var^2 / 5
    }
  }
  a.reset_parameters(43);
  EXPECT_TRUE(torch::equal(a.flat(), d.flat()));
}

TEST(UpliftNet, SaveLoadRoundTripByName) {
  for (auto dtype : {at::kFloat, at::kDouble}) {
    UpliftNetConfig c = small(6, 3, {5, 4}, {3}, true, true);
    UpliftNet a(c, 1, dtype), b(c, 2, dtype);
    const std::string path = test::temp_path("uplift_roundtrip.pt");
    a.save(path);
    b.load(path);
    EXPECT_TRUE(torch::equal(a.flat(), b.flat()));
    EXPECT_TRUE(b.flat().requires_grad());
    const at::Tensor x = features(4, 6, 2).to(dtype);
    EXPECT_TRUE(torch::equal(a.forward(x).c_hat, b.forward(x).c_hat));
    // The file is a plain name -> tensor dict with the layout's shapes.
    model::NamedTensors file = model::read_param_file(path);
    ASSERT_EQ(file.size(), a.layout().entries().size());
    for (size_t i = 0; i < file.size(); ++i) {
      EXPECT_EQ(file[i].first, a.layout().entries()[i].name);
      EXPECT_TRUE(torch::equal(file[i].second, a.named_parameters()[i].second.detach()));
    }
  }
}

TEST(UpliftNet, LoadRejectsOtherArchitecturesAndBadFiles) {
  const std::string path = test::temp_path("uplift_other.pt");
  UpliftNet(UpliftNetConfig::preset("criteo", 12, 2), 1).save(path);
  UpliftNet official(UpliftNetConfig::preset("dfcl_official", 12, 2), 1);
  try {
    official.load(path);
    FAIL() << "loaded a criteo file into dfcl_official";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("are not in this model"), std::string::npos) << e.what();
  }
  UpliftNetConfig wider = UpliftNetConfig::preset("criteo", 12, 2);
  wider.trunk = {64, 32, 33};
  try {
    UpliftNet(wider, 1).load(path);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("parameter 'trunk.2.weight' has shape (32, 32), this model needs (33, 32)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(official.load(test::temp_path("no_such_file.pt")), IoError);
  const std::string junk = test::temp_path("junk.pt");
  std::ofstream(junk) << "not a pickle";
  EXPECT_THROW(official.load(junk), DataError);
}

TEST(UpliftNet, ForwardRejectsWrongShapes) {
  UpliftNet net(small(4, 2, {3}, {}, true), 1);
  try {
    net.forward(torch::zeros({3, 5}));
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("features have shape (3, 5), expected (B, 4)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(net.forward(torch::zeros({7}), torch::zeros({3, 4})), DataError);
}

TEST(UpliftNetConfig, FromSectionAppliesPresetThenOverrides) {
  Config cfg = Config::from_string(
      "model:\n  preset: dfcl_official\n  activation: tanh\n  cost_output: softplus\n  shared_trunk: false\n");
  UpliftNetConfig c = UpliftNetConfig::from(cfg.sub("model"), 12, 2);
  EXPECT_EQ(c.trunk, std::vector<int>{127});
  EXPECT_EQ(c.head, std::vector<int>{64});
  EXPECT_TRUE(c.arm_column);
  EXPECT_EQ(c.activation, "tanh");
  EXPECT_EQ(c.revenue_output, "auto");  // presets describe the architecture; the heads are fitted to the labels
  EXPECT_EQ(c.cost_output, "softplus");
  EXPECT_FALSE(c.shared_trunk);
  EXPECT_NO_THROW(cfg.check_all_used());
  Config plain = Config::from_string("model:\n  trunk: [8, 4]\n  head: []\n");
  UpliftNetConfig p = UpliftNetConfig::from(plain.sub("model"), 3, 4);
  EXPECT_EQ(p.trunk, (std::vector<int>{8, 4}));
  EXPECT_TRUE(p.head.empty());
  EXPECT_EQ(p.activation, "relu");
  EXPECT_EQ(p.revenue_output, "auto");
  EXPECT_THROW(UpliftNet(p, 0), ConfigError) << "an unresolved auto head must not build a net";
}

TEST(UpliftNetConfig, BadValuesNameTheKeyAndTheFix) {
  auto message = [](const std::string& yaml) -> std::string {
    try {
      UpliftNetConfig::from(Config::from_string(yaml).sub("model"), 6, 3);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(message("model:\n  trunk: [64, 0, 32]\n"),
            "model.trunk: width 0 at position 1 must lie in [1, 1048576]; e.g. trunk: [64, 32, 32]");
  EXPECT_NE(message("model:\n  head: [-3]\n").find("model.head: width -3 at position 0"), std::string::npos);
  EXPECT_EQ(message("model:\n  activation: swish\n"),
            "model.activation: unknown activation 'swish'; use one of: relu, leaky_relu, elu, gelu, tanh");
  EXPECT_EQ(message("model:\n  revenue_output: exp\n"),
            "model.revenue_output: unknown output transform 'exp'; use one of: identity, softplus, sigmoid");
  EXPECT_NE(message("model:\n  preset: resnet\n").find("unknown preset 'resnet'; use one of: criteo, dfcl_official"),
            std::string::npos);
  UpliftNetConfig c = small(6, 1, {4}, {}, true);
  EXPECT_THROW(UpliftNet(c, 0), ConfigError);
}

TEST(ToBatch, CopiesEveryColumn) {
  data::Generator g(test::small_config(40, 10, 5, 4));
  data::Table t;
  g.fill(0, g.rows(), t, 1);
  model::Batch b = model::to_batch(t, at::kDouble);
  ASSERT_EQ(b.rows(), 50);
  EXPECT_EQ(b.x.sizes(), at::IntArrayRef({50, 5}));
  EXPECT_EQ(b.t.scalar_type(), at::kLong);
  EXPECT_EQ(b.x.scalar_type(), at::kDouble);
  for (int64_t i = 0; i < 50; ++i) {
    EXPECT_EQ(b.t[i].item<int64_t>(), t.treatment[i]);
    EXPECT_EQ(b.y_r[i].item<double>(), double(t.revenue[i]));
    EXPECT_EQ(b.y_c[i].item<double>(), double(t.cost[i]));
    EXPECT_EQ(b.weight[i].item<double>(), 1.0);
    for (int k = 0; k < 5; ++k) EXPECT_EQ(b.x[i][k].item<double>(), double(t.features[i * 5 + k]));
  }
  t.with_weight = true;
  t.weight.assign(50, 1.f);
  t.weight[7] = 0;
  EXPECT_EQ(model::to_batch(t).weight[7].item<float>(), 0.f);
  t.treatment[3] = 4;
  EXPECT_THROW(model::to_batch(t), DataError);
}

TEST(UpliftNetConfig, AutoHeadsFitTheLabelsAndExplicitHeadsThatCannotReachThemAreErrors) {
  auto range = [](double lo, double hi) {
    model::LabelRange y;
    y.add(lo), y.add(hi);
    return y;
  };
  auto resolved = [&](const std::string& rev, const std::string& cost, model::LabelRange yr, model::LabelRange yc,
                      bool factors = false) {
    UpliftNetConfig c = small(3, 2, {4}, {}, true);
    c.revenue_output = rev, c.cost_output = cost;
    c.resolve_outputs(yr, yc, factors, "d.h5");
    return c.revenue_output + "/" + c.cost_output;
  };
  // auto: sigmoid only for labels in [0, 1], softplus for labels >= 0, identity otherwise.
  EXPECT_EQ(resolved("auto", "auto", range(0, 1), range(0, 1)), "sigmoid/sigmoid");
  EXPECT_EQ(resolved("auto", "auto", range(0, 57.3), range(0, 4)), "softplus/softplus");
  EXPECT_EQ(resolved("auto", "auto", range(-2.5, 10), range(0, 1.0000001)), "identity/softplus");
  EXPECT_EQ(resolved("auto", "auto", model::LabelRange{}, range(0.2, 0.2)), "identity/sigmoid");
  // Explicit heads that reach the labels stay as they are.
  EXPECT_EQ(resolved("identity", "softplus", range(0, 0.5), range(0, 9)), "identity/softplus");
  EXPECT_EQ(resolved("sigmoid", "sigmoid", range(0, 1), range(0, 1)), "sigmoid/sigmoid");
  // Factor models (DHCL, DRP): raw scores, so auto is the identity and a bounded head is refused.
  EXPECT_EQ(resolved("auto", "auto", range(0, 57), range(0, 4), true), "identity/identity");
  EXPECT_THROW(resolved("softplus", "auto", range(0, 57), range(0, 4), true), ConfigError);
  auto message = [&](const std::string& rev, const std::string& cost, model::LabelRange yr, model::LabelRange yc) {
    try {
      resolved(rev, cost, yr, yc);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // The case: a sigmoid revenue head on revenue of scale 1-10 is an error naming the key, the labels and the fix.
  EXPECT_EQ(message("sigmoid", "auto", range(0, 57.3), range(0, 4)),
            "model.revenue_output = sigmoid limits the predicted revenue to (0, 1), but the revenue labels of the "
            "training rows of d.h5 lie in [0, 57.3] over 2 rows: the model cannot fit them. Use "
            "model.revenue_output=auto (it picks softplus for these labels) or identity");
  EXPECT_NE(message("auto", "softplus", range(0, 1), range(-1, 3)).find("model.cost_output = softplus limits the "
                                                                         "predicted cost to (0, inf)"),
            std::string::npos);
  EXPECT_NE(message("auto", "sigmoid", range(0, 1), range(0, 2)).find("it picks softplus"), std::string::npos);
}

namespace dfcl {
// A layer list no machine can hold is a ConfigError naming model.trunk and the size, before any allocation (it was a
// std::bad_alloc; issue 14, item 9).
TEST(UpliftNet, ANetBeyondTheMachinesMemoryIsNamedBeforeAllocating) {
  UpliftNetConfig c = small(32, 3, {100000, 100000}, {}, true);
  try {
    model::UpliftNet net(c, 1);
    FAIL() << "built a net of " << net.num_parameters() << " parameters";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("model.trunk = [100000, 100000]"), std::string::npos) << m;
    // 32 x 1e5 + 1e5 (trunk 0) + 1e10 + 1e5 (trunk 1) + 6 heads x (1e5 + 1) = 10004000006
    EXPECT_NE(m.find("10004000006 parameters"), std::string::npos) << m;
  }
  EXPECT_NO_THROW(model::UpliftNet(small(32, 3, {64, 64}, {}, true), 1));
}
}  // namespace dfcl
