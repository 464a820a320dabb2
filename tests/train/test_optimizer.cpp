// \brief Optimisers against torch::optim (float64, flat vector vs the same values split into three tensors), state
// round trips (bitwise), the `optimizer` and `schedule` sections' checks, and the schedules' closed forms.
#include <gtest/gtest.h>  // for TEST, TEST_P

#include <torch/torch.h>  // for torch::optim::SGD, torch::optim::Adam, torch::optim::AdamW

#include <algorithm>   // for std::max
#include <cmath>       // for std::cos, std::pow
#include <cstdio>      // for std::remove
#include <functional>  // for std::function
#include <memory>      // for std::unique_ptr
#include <ostream>     // for std::ostream
#include <string>      // for std::string
#include <vector>      // for std::vector

#include "core/config.h"        // for Config
#include "core/error.h"         // for ConfigError, DataError
#include "model/param_file.h"   // for write_param_file, read_param_file
#include "train/lr_schedule.h"  // for LrSchedule
#include "train/optimizer.h"    // for OptimizerConfig, make_optimizer

using namespace dfcl;
using train::LrSchedule;
using train::OptimizerConfig;

namespace {
constexpr int64_t kN = 11;
const std::vector<int64_t> kSplit{4, 5, 2};  // the torch::optim side: three parameter tensors
constexpr double kPi = 3.14159265358979323846;

at::TensorOptions f64() { return at::TensorOptions().dtype(at::kDouble); }

OptimizerConfig opt_config(const std::string& body) {
  return OptimizerConfig::from(Config::from_string("optimizer:\n" + body).sub("optimizer"));
}
LrSchedule schedule(const std::string& body) {
  return LrSchedule::from(Config::from_string("schedule:\n" + body).sub("schedule"));
}

// The message of the exception `f` throws as E ("" when it throws nothing).
template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}
#define EXPECT_ERROR(E, stmt, text)                                             \
  do {                                                                          \
    const std::string msg = error_of<E>([&] { stmt; });                         \
    EXPECT_NE(msg.find(text), std::string::npos) << "message: '" << msg << "'"; \
  } while (0)

at::Tensor initial(at::ScalarType dtype = at::kDouble) { return (at::arange(kN, f64()).mul(1.3).sin() * 2).to(dtype); }

// A deterministic gradient sequence: a quadratic's gradient a (p - c) plus a drift that changes with the step.
at::Tensor gradient(const at::Tensor& p, int64_t t) {
  torch::NoGradGuard no_grad;
  at::Tensor i = at::arange(kN, f64());
  at::Tensor a = i / double(kN) + 0.5, c = (i * 0.7).cos();
  return (a * (p.to(at::kDouble) - c) + (i + double(t)).sin() * 0.1).to(p.scalar_type());
}

// The rate at step t: varies, so a mistake in how lr enters the rule (AdamW's decay) shows.
double lr_at(const OptimizerConfig& c, int64_t t) { return c.lr * (1 - 0.02 * double(t)); }

// `steps` flat updates from `p` (steps counted on from `first`).
void run_flat(train::Optimizer& opt, const OptimizerConfig& c, at::Tensor& p, int64_t first, int64_t steps) {
  for (int64_t t = first; t < first + steps; ++t) opt.step(p, gradient(p, t), lr_at(c, t));
}

at::Tensor flat(const OptimizerConfig& c, int64_t steps, at::ScalarType dtype = at::kDouble) {
  at::Tensor p = initial(dtype).requires_grad_(true);  // step() must work on a leaf that requires grad
  auto opt = train::make_optimizer(c, p);
  run_flat(*opt, c, p, 0, steps);
  EXPECT_EQ(opt->steps(), steps);
  return p.detach();
}

template <class Options>
void set_lr(torch::optim::Optimizer& opt, double lr) {
  static_cast<Options&>(opt.param_groups()[0].options()).lr(lr);
}

// The same run with torch::optim over three tensors.
at::Tensor reference(const OptimizerConfig& c, int64_t steps, at::ScalarType dtype = at::kDouble) {
  std::vector<at::Tensor> params;
  for (const at::Tensor& part : initial(dtype).split_with_sizes(kSplit))
    params.push_back(part.clone().requires_grad_(true));
  std::unique_ptr<torch::optim::Optimizer> opt;
  std::function<void(double)> lr;
  const auto betas = std::make_tuple(c.beta1, c.beta2);
  if (c.name == "sgd") {
    opt = std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(c.lr)
                                                          .momentum(c.momentum)
                                                          .dampening(0)
                                                          .nesterov(c.nesterov)
                                                          .weight_decay(c.weight_decay));
    lr = [&](double v) { set_lr<torch::optim::SGDOptions>(*opt, v); };
  } else if (c.name == "adam") {
    opt = std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(c.lr).betas(betas).eps(c.eps).weight_decay(c.weight_decay));
    lr = [&](double v) { set_lr<torch::optim::AdamOptions>(*opt, v); };
  } else {
    opt = std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(c.lr).betas(betas).eps(c.eps).weight_decay(c.weight_decay));
    lr = [&](double v) { set_lr<torch::optim::AdamWOptions>(*opt, v); };
  }
  for (int64_t t = 0; t < steps; ++t) {
    at::Tensor g;
    {
      torch::NoGradGuard no_grad;
      g = gradient(at::cat(params), t);
    }
    auto parts = g.split_with_sizes(kSplit);
    for (size_t k = 0; k < params.size(); ++k) params[k].mutable_grad() = parts[k].clone();
    lr(lr_at(c, t));
    opt->step();
  }
  return at::cat(params).detach();
}

double max_rel_diff(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs() / b.abs().clamp_min(1e-300)).max().item<double>();
}

struct Case {
  const char* label;
  const char* yaml;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.label; }

class AgainstTorch : public ::testing::TestWithParam<Case> {};

const Case kCases[] = {
    {"sgd", "  name: sgd\n  lr: 0.1\n"},
    {"sgd_momentum", "  name: sgd\n  lr: 0.1\n  momentum: 0.9\n"},
    {"sgd_nesterov", "  name: sgd\n  lr: 0.1\n  momentum: 0.9\n  nesterov: true\n"},
    {"sgd_weight_decay", "  name: sgd\n  lr: 0.1\n  weight_decay: 0.05\n"},
    {"sgd_momentum_weight_decay", "  name: sgd\n  lr: 0.1\n  momentum: 0.8\n  weight_decay: 0.05\n"},
    {"sgd_nesterov_weight_decay", "  name: sgd\n  lr: 0.1\n  momentum: 0.9\n  nesterov: true\n  weight_decay: 0.05\n"},
    {"adam", "  name: adam\n  lr: 0.05\n"},
    {"adam_weight_decay", "  name: adam\n  lr: 0.05\n  weight_decay: 0.1\n"},
    {"adam_betas_eps", "  name: adam\n  lr: 0.05\n  betas: [0.8, 0.99]\n  eps: 1e-3\n"},
    {"adamw", "  name: adamw\n  lr: 0.05\n  weight_decay: 0.1\n"},
    {"adamw_no_decay", "  name: adamw\n  lr: 0.05\n"},
};

TEST_P(AgainstTorch, TwentyStepsMatchTorchOptim) {
  const OptimizerConfig c = opt_config(GetParam().yaml);
  const at::Tensor ours = flat(c, 20), theirs = reference(c, 20);
  ASSERT_EQ(ours.sizes(), theirs.sizes());
  EXPECT_FALSE(torch::equal(ours, initial())) << "the parameters did not move";
  const double diff = max_rel_diff(ours, theirs);
  RecordProperty("max_rel_diff", ::testing::PrintToString(diff));
  EXPECT_LE(diff, 1e-12) << "ours " << ours << "\ntorch " << theirs;
}

TEST_P(AgainstTorch, StateRoundTripIsBitwise) {
  const OptimizerConfig c = opt_config(GetParam().yaml);
  const at::Tensor uninterrupted = flat(c, 20);

  at::Tensor p = initial();
  auto first = train::make_optimizer(c, p);
  run_flat(*first, c, p, 0, 10);
  const model::NamedTensors state = first->state();
  first.reset();

  auto second = train::make_optimizer(c, p);
  second->load_state(state);
  EXPECT_EQ(second->steps(), 10);
  run_flat(*second, c, p, 10, 10);
  EXPECT_TRUE(torch::equal(p, uninterrupted)) << "max diff " << (p - uninterrupted).abs().max().item<double>();
}

TEST_P(AgainstTorch, Float32StaysCloseToFloat64) {
  const OptimizerConfig c = opt_config(GetParam().yaml);
  const at::Tensor single = flat(c, 20, at::kFloat);
  EXPECT_EQ(single.scalar_type(), at::kFloat);
  EXPECT_LE((single.to(at::kDouble) - flat(c, 20)).abs().max().item<double>(), 1e-4);
  const at::Tensor theirs = reference(c, 20, at::kFloat);
  EXPECT_LE((single - theirs).abs().max().item<double>(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Rules, AgainstTorch, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.label); });

TEST(Optimizer, StateNamesAndShapes) {
  const at::Tensor p = initial();
  auto names = [&](const std::string& yaml) {
    std::string out;
    for (const auto& [name, t] : train::make_optimizer(opt_config(yaml), p)->state()) {
      out += name + " ";
      if (name == "step") {
        EXPECT_EQ(t.dim(), 0);
        EXPECT_EQ(t.scalar_type(), at::kLong);
      } else {
        EXPECT_EQ(t.sizes(), p.sizes());
        EXPECT_EQ(t.scalar_type(), at::kDouble);
        EXPECT_FALSE(t.requires_grad());
      }
    }
    return out;
  };
  EXPECT_EQ(names("  name: adam\n"), "exp_avg exp_avg_sq step ");
  EXPECT_EQ(names("  name: adamw\n"), "exp_avg exp_avg_sq step ");
  EXPECT_EQ(names("  name: sgd\n  momentum: 0.9\n"), "momentum_buffer step ");
  EXPECT_EQ(names("  name: sgd\n"), "step ");
  EXPECT_EQ(train::make_optimizer(opt_config("  name: adamw\n"), p)->name(), "adamw");
}

TEST(Optimizer, StateIsASnapshot) {
  const OptimizerConfig c = opt_config("  name: adam\n  lr: 0.05\n");
  at::Tensor p = initial();
  auto opt = train::make_optimizer(c, p);
  run_flat(*opt, c, p, 0, 3);
  const model::NamedTensors before = opt->state();
  const at::Tensor kept = before[0].second.clone();
  run_flat(*opt, c, p, 3, 1);
  EXPECT_TRUE(torch::equal(before[0].second, kept));
  EXPECT_EQ(before[2].second.item<int64_t>(), 3);
  EXPECT_EQ(opt->state()[2].second.item<int64_t>(), 4);
}

TEST(Optimizer, StateSurvivesAParamFile) {
  const OptimizerConfig c = opt_config("  name: adamw\n  lr: 0.05\n  weight_decay: 0.1\n");
  const at::Tensor uninterrupted = flat(c, 20);
  at::Tensor p = initial();
  auto opt = train::make_optimizer(c, p);
  run_flat(*opt, c, p, 0, 10);
  const std::string path = ::testing::TempDir() + "dfcl_test_optimizer_state.pt";
  model::write_param_file(path, opt->state());
  auto resumed = train::make_optimizer(c, p);
  resumed->load_state(model::read_param_file(path));
  std::remove(path.c_str());
  run_flat(*resumed, c, p, 10, 10);
  EXPECT_TRUE(torch::equal(p, uninterrupted));
}

TEST(Optimizer, LoadStateNamesTheBadBuffer) {
  const at::Tensor p = initial();
  const OptimizerConfig adam = opt_config("  name: adam\n");
  auto source = train::make_optimizer(adam, p);
  at::Tensor q = p.clone();
  source->step(q, gradient(q, 0), 0.1);
  const model::NamedTensors good = source->state();
  auto without = [&](const std::string& name) {
    model::NamedTensors s;
    for (const auto& kv : good)
      if (kv.first != name) s.push_back(kv);
    return s;
  };
  auto replaced = [&](const std::string& name, const at::Tensor& t) {
    model::NamedTensors s = good;
    for (auto& kv : s)
      if (kv.first == name) kv.second = t;
    return s;
  };
  auto target = train::make_optimizer(adam, p);
  EXPECT_ERROR(DataError, target->load_state(without("exp_avg_sq")), "buffer 'exp_avg_sq' is missing");
  EXPECT_ERROR(DataError, target->load_state(without("step")), "buffer 'step' is missing");
  EXPECT_ERROR(DataError, target->load_state(replaced("exp_avg", at::zeros({kN + 1}, f64()))), "buffer 'exp_avg' is");
  EXPECT_ERROR(DataError, target->load_state(replaced("exp_avg", at::zeros({kN}, at::kFloat))), "buffer 'exp_avg' is");
  EXPECT_ERROR(DataError, target->load_state(replaced("step", at::zeros({}, f64()))), "buffer 'step' must be");
  model::NamedTensors extra = good;
  extra.emplace_back("momentum_buffer", at::zeros({kN}, f64()));
  EXPECT_ERROR(DataError, target->load_state(extra), "unexpected buffer 'momentum_buffer'");
  auto sgd = train::make_optimizer(opt_config("  name: sgd\n  momentum: 0.9\n"), p);
  EXPECT_ERROR(DataError, sgd->load_state(good), "unexpected buffer 'exp_avg'");
  // A failed load changes nothing.
  EXPECT_EQ(target->steps(), 0);
  EXPECT_EQ(target->state()[0].second.abs().sum().item<double>(), 0);
  target->load_state(good);
  EXPECT_EQ(target->steps(), 1);
}

TEST(Optimizer, StepChecksItsTensors) {
  at::Tensor p = initial();
  auto opt = train::make_optimizer(opt_config("  name: adam\n"), p);
  EXPECT_ERROR(DataError, opt->step(p, at::zeros({kN - 1}, f64()), 0.1), "the gradient is");
  EXPECT_ERROR(DataError, opt->step(p, at::zeros({kN}, at::kFloat), 0.1), "the gradient is");
  at::Tensor other = at::zeros({kN + 1}, f64());
  EXPECT_ERROR(DataError, opt->step(other, at::zeros({kN + 1}, f64()), 0.1),
               "it was made for a 1-D Double tensor of 11");
  EXPECT_ERROR(DataError, opt->step(p, at::zeros({kN}, f64()), -1), "learning rate -1");
  EXPECT_ERROR(DataError, train::make_optimizer(opt_config("  name: sgd\n"), at::zeros({2, 3})),
               "1-D float32 or float64");
  EXPECT_ERROR(DataError, train::make_optimizer(opt_config("  name: sgd\n"), at::zeros({3}, at::kLong)),
               "1-D float32 or float64");
  EXPECT_EQ(opt->steps(), 0);
}

TEST(OptimizerConfig, ReadsEveryKey) {
  const OptimizerConfig d = opt_config("  {}\n");
  EXPECT_EQ(d.name, "adam");
  EXPECT_EQ(d.lr, 1e-3);
  EXPECT_EQ(d.beta1, 0.9);
  EXPECT_EQ(d.beta2, 0.999);
  EXPECT_EQ(d.eps, 1e-8);
  const OptimizerConfig a =
      opt_config("  name: adamw\n  lr: 2e-3\n  weight_decay: 0.01\n  betas: [0.5, 0.75]\n  eps: 1e-6\n");
  EXPECT_EQ(a.name, "adamw");
  EXPECT_EQ(a.lr, 2e-3);
  EXPECT_EQ(a.weight_decay, 0.01);
  EXPECT_EQ(a.beta1, 0.5);
  EXPECT_EQ(a.beta2, 0.75);
  EXPECT_EQ(a.eps, 1e-6);
  const OptimizerConfig s = opt_config("  name: sgd\n  lr: 1\n  momentum: 0.5\n  nesterov: true\n");
  EXPECT_EQ(s.lr, 1);
  EXPECT_EQ(s.momentum, 0.5);
  EXPECT_TRUE(s.nesterov);
  // Every key is read, so the command's unknown-key check passes.
  Config cfg = Config::from_string("optimizer:\n  name: sgd\n  lr: 0.1\n  momentum: 0.9\n  weight_decay: 0\n");
  OptimizerConfig::from(cfg.sub("optimizer"));
  EXPECT_NO_THROW(cfg.check_all_used());
}

TEST(OptimizerConfig, BadValuesNameTheKey) {
  EXPECT_ERROR(ConfigError, opt_config("  lr: -1\n"), "optimizer.lr is -1; it must be > 0");
  EXPECT_ERROR(ConfigError, opt_config("  lr: 0\n"), "optimizer.lr is 0");
  EXPECT_ERROR(ConfigError, opt_config("  name: rmsprop\n"),
               "optimizer.name is 'rmsprop'; use one of: sgd, adam, adamw");
  EXPECT_ERROR(ConfigError, opt_config("  weight_decay: -0.1\n"), "optimizer.weight_decay is -0.1");
  EXPECT_ERROR(ConfigError, opt_config("  name: sgd\n  momentum: 1.5\n"), "optimizer.momentum is 1.5");
  EXPECT_ERROR(ConfigError, opt_config("  name: sgd\n  nesterov: true\n"), "optimizer.nesterov is true but");
  EXPECT_ERROR(ConfigError, opt_config("  betas: [0.9]\n"), "optimizer.betas has 1 values");
  EXPECT_ERROR(ConfigError, opt_config("  betas: [0.9, 1.0]\n"), "optimizer.betas is [0.9, 1]");
  EXPECT_ERROR(ConfigError, opt_config("  eps: 0\n"), "optimizer.eps is 0");
  EXPECT_ERROR(ConfigError, opt_config("  lr: fast\n"), "'optimizer.lr'");
  // Beyond float32 (the parameters' type): named, not "cannot be converted to type float" (issue 14, item 9).
  EXPECT_ERROR(ConfigError, opt_config("  lr: 1e300\n"), "optimizer.lr is 1e+300; it must be below 3.4e38");
  // Keys of another optimiser.
  EXPECT_ERROR(ConfigError, opt_config("  name: adam\n  momentum: 0.9\n"), "optimizer.momentum applies to sgd only");
  EXPECT_ERROR(ConfigError, opt_config("  name: adamw\n  nesterov: false\n"), "optimizer.nesterov applies to sgd only");
  EXPECT_ERROR(ConfigError, opt_config("  name: sgd\n  betas: [0.9, 0.99]\n"), "optimizer.betas applies to adam");
  EXPECT_ERROR(ConfigError, opt_config("  name: sgd\n  eps: 1e-8\n"), "optimizer.eps applies to adam");
  OptimizerConfig direct;
  direct.lr = -2;
  EXPECT_ERROR(ConfigError, train::make_optimizer(direct, initial()), "optimizer.lr is -2");
}

// ---- schedules ----

TEST(LrSchedule, Constant) {
  const LrSchedule s = schedule("  kind: constant\n");
  for (int64_t t : {0, 1, 50, 99, 100}) EXPECT_EQ(s.factor(t, 100), 1.0);
  EXPECT_EQ(LrSchedule{}.factor(7, 10), 1.0);  // the default
}

TEST(LrSchedule, WarmupRampsLinearlyToOne) {
  const LrSchedule s = schedule("  kind: constant\n  warmup_steps: 4\n");
  EXPECT_DOUBLE_EQ(s.factor(0, 100), 0.25);
  EXPECT_DOUBLE_EQ(s.factor(1, 100), 0.5);
  EXPECT_DOUBLE_EQ(s.factor(2, 100), 0.75);
  EXPECT_DOUBLE_EQ(s.factor(3, 100), 1.0);
  EXPECT_DOUBLE_EQ(s.factor(4, 100), 1.0);
  // A warm-up as long as the run.
  EXPECT_DOUBLE_EQ(s.factor(1, 3), 0.5);
}

TEST(LrSchedule, CosineClosedForm) {
  const LrSchedule s = schedule("  kind: cosine\n  min_factor: 0.1\n");
  EXPECT_DOUBLE_EQ(s.factor(0, 100), 1.0);
  EXPECT_DOUBLE_EQ(s.factor(25, 100), 0.1 + 0.9 * (1 + std::cos(kPi / 4)) / 2);
  EXPECT_DOUBLE_EQ(s.factor(50, 100), 0.55);
  EXPECT_DOUBLE_EQ(s.factor(99, 100), 0.1 + 0.9 * (1 + std::cos(kPi * 0.99)) / 2);
  EXPECT_DOUBLE_EQ(s.factor(100, 100), 0.1);
  EXPECT_DOUBLE_EQ(s.factor(500, 100), 0.1);  // past the end: the floor
}

TEST(LrSchedule, CosineAfterWarmup) {
  const LrSchedule s = schedule("  kind: cosine\n  warmup_steps: 10\n  min_factor: 0.2\n");
  EXPECT_DOUBLE_EQ(s.factor(0, 110), 0.1);
  EXPECT_DOUBLE_EQ(s.factor(4, 110), 0.5);
  EXPECT_DOUBLE_EQ(s.factor(9, 110), 1.0);
  EXPECT_DOUBLE_EQ(s.factor(10, 110), 1.0);
  EXPECT_DOUBLE_EQ(s.factor(60, 110), 0.6);
}

TEST(LrSchedule, CosineIsMonotone) {
  for (const char* body : {"  kind: cosine\n", "  kind: cosine\n  min_factor: 0.3\n  warmup_steps: 7\n"}) {
    const LrSchedule s = schedule(body);
    const int64_t total = 1000;
    double prev = s.factor(s.warmup_steps, total);
    for (int64_t t = s.warmup_steps + 1; t < total; ++t) {
      const double f = s.factor(t, total);
      EXPECT_LT(f, prev) << body << " step " << t;
      EXPECT_GT(f, s.min_factor) << body << " step " << t;
      prev = f;
    }
    // Rising through warm-up.
    for (int64_t t = 1; t < s.warmup_steps; ++t) EXPECT_GT(s.factor(t, total), s.factor(t - 1, total));
    EXPECT_EQ(s.factor(std::max<int64_t>(0, s.warmup_steps - 1), total), 1.0);
  }
}

TEST(LrSchedule, LinearClosedForm) {
  const LrSchedule s = schedule("  kind: linear\n  min_factor: 0.2\n");
  EXPECT_DOUBLE_EQ(s.factor(0, 100), 1.0);
  EXPECT_DOUBLE_EQ(s.factor(50, 100), 0.6);
  EXPECT_DOUBLE_EQ(s.factor(75, 100), 0.4);
  EXPECT_DOUBLE_EQ(s.factor(100, 100), 0.2);
  const LrSchedule w = schedule("  kind: linear\n  warmup_steps: 5\n");
  EXPECT_DOUBLE_EQ(w.factor(1, 25), 0.4);
  EXPECT_DOUBLE_EQ(w.factor(15, 25), 0.5);
}

TEST(LrSchedule, StepClosedForm) {
  const LrSchedule s = schedule("  kind: step\n  step_size: 10\n  gamma: 0.5\n");
  EXPECT_DOUBLE_EQ(s.factor(0, 100), 1.0);
  EXPECT_DOUBLE_EQ(s.factor(9, 100), 1.0);
  EXPECT_DOUBLE_EQ(s.factor(10, 100), 0.5);
  EXPECT_DOUBLE_EQ(s.factor(25, 100), 0.25);
  EXPECT_DOUBLE_EQ(s.factor(99, 100), std::pow(0.5, 9));
  const LrSchedule w = schedule("  kind: step\n  step_size: 10\n  gamma: 0.5\n  warmup_steps: 5\n");
  EXPECT_DOUBLE_EQ(w.factor(2, 100), 0.6);
  EXPECT_DOUBLE_EQ(w.factor(12, 100), 0.5);
}

TEST(LrSchedule, ReadsEveryKey) {
  Config cfg = Config::from_string("schedule:\n  kind: step\n  warmup_steps: 3\n  step_size: 7\n  gamma: 0.25\n");
  const LrSchedule s = LrSchedule::from(cfg.sub("schedule"));
  EXPECT_EQ(s.kind, "step");
  EXPECT_EQ(s.warmup_steps, 3);
  EXPECT_EQ(s.step_size, 7);
  EXPECT_EQ(s.gamma, 0.25);
  EXPECT_NO_THROW(cfg.check_all_used());
  EXPECT_EQ(schedule("  kind: cosine\n  min_factor: 0.05\n").min_factor, 0.05);
  EXPECT_EQ(schedule("  {}\n").kind, "constant");
}

TEST(LrSchedule, BadValuesNameTheKey) {
  EXPECT_ERROR(ConfigError, schedule("  kind: exponential\n"),
               "schedule.kind is 'exponential'; use one of: constant, cosine, linear, step");
  EXPECT_ERROR(ConfigError, schedule("  warmup_steps: -1\n"), "schedule.warmup_steps is -1");
  EXPECT_ERROR(ConfigError, schedule("  kind: cosine\n  min_factor: 1.5\n"), "schedule.min_factor is 1.5");
  EXPECT_ERROR(ConfigError, schedule("  kind: linear\n  min_factor: -0.1\n"), "schedule.min_factor is -0.1");
  EXPECT_ERROR(ConfigError, schedule("  kind: step\n  step_size: 0\n"), "schedule.step_size is 0");
  EXPECT_ERROR(ConfigError, schedule("  kind: step\n  gamma: 0\n"), "schedule.gamma is 0");
  EXPECT_ERROR(ConfigError, schedule("  kind: step\n  gamma: 1.5\n"), "schedule.gamma is 1.5");
  EXPECT_ERROR(ConfigError, schedule("  warmup_steps: 2.5\n"), "'schedule.warmup_steps'");
  EXPECT_ERROR(ConfigError, schedule("  kind: cosine\n  gamma: 0.5\n"), "schedule.gamma applies to kind step only");
  EXPECT_ERROR(ConfigError, schedule("  kind: step\n  min_factor: 0.1\n"),
               "schedule.min_factor applies to kind cosine");
  EXPECT_ERROR(DataError, LrSchedule{}.factor(0, 0), "total_steps >= 1");
  EXPECT_ERROR(DataError, LrSchedule{}.factor(-1, 10), "step >= 0");
  EXPECT_NO_THROW(schedule("  kind: step\n  gamma: 1\n"));
  EXPECT_NO_THROW(schedule("  kind: linear\n  min_factor: 1\n"));
}

}  // namespace
