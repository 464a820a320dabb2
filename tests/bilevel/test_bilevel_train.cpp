// \brief The bi-level step inside the trainer, on one process: the closed-form mixed term trains to the same
// parameters as double backward (float64), every variant runs and moves the bridge, a non-finite hypergradient stops
// the run naming the upper step and the term, and a resume against another teacher is refused.
#include <ATen/Parallel.h>  // for at::set_num_threads
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>  // for std::filesystem
#include <string>      // for std::string
#include <vector>      // for std::vector

#include "bilevel/bilevel.h"    // for bilevel_method
#include "core/config.h"        // for Config
#include "core/error.h"         // for DataError
#include "core/log.h"           // for log::set_level
#include "data/generator.h"     // for Generator
#include "data/source.h"        // for MemorySource
#include "dist/communicator.h"  // for make_local_communicator
#include "train/checkpoint.h"   // for read_checkpoint
#include "train/trainer.h"      // for Trainer

namespace dfcl::bilevel {
namespace {

namespace fs = std::filesystem;

std::string dir(const std::string& name) { return (fs::path(::testing::TempDir()) / ("dfcl_bilevel_" + name)).string(); }

data::MemorySource population() {
  data::GeneratorConfig g;
  g.rct_rows = 2000, g.observational_rows = 6000, g.features = 5, g.arms = 3, g.seed = 5, g.arm_values = {0, 1, 2};
  g.rct_propensity = {0.4, 0.3, 0.3};
  g.validate();
  data::Generator gen(g);
  data::Table t;
  gen.fill(0, gen.rows(), t, 1);
  return data::MemorySource(gen.meta(), std::move(t), 1000);
}

Config config(const std::string& out, const std::vector<std::string>& sets) {
  Config c = Config::from_string("train:\n  generate: true\n  batch_size: 512\n  epochs: 2\n  seed: 1\n"
                                 "validation:\n  budgets: [0.5]\nmodel:\n  trunk: [8]\n  cost_output: softplus\n"
                                 "optimizer:\n  lr: 0.01\n",
                                 "test.yaml");
  c.set("train.output=" + out);
  for (const auto& s : sets) c.set(s);
  return c;
}

class BilevelTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(1);
    log::set_level(log::Level::kError);
    teacher_ = dir("teacher") + "/best.ckpt";
    if (!fs::exists(teacher_)) {
      auto comm = dist::make_local_communicator();
      train::Trainer t(config(dir("teacher"), {"train.source=rct", "train.dtype=float64", "validation.metric=loss"}),
                       src_, *comm, 1);
      t.run();
    }
  }
  std::vector<std::string> sets(std::vector<std::string> more) const {
    std::vector<std::string> s{"train.source=observational", "train.dtype=float64",
                               "loss={name: ppl, budgets: [0.5], lambda_source: sample, alpha: 0, tau: 0.5}",
                               "bilevel.teacher=" + teacher_, "bilevel.k=2", "bilevel.warm_start_epochs=0",
                               "bilevel.rct_batch=512", "bilevel.cg.iterations=8"};
    s.insert(s.end(), more.begin(), more.end());
    return s;
  }
  // Trains; returns the target's and the bridge's final parameters.
  std::pair<at::Tensor, at::Tensor> run(const std::string& name, const std::vector<std::string>& more) {
    auto comm = dist::make_local_communicator();
    train::Trainer t(config(dir(name), sets(more)), src_, *comm, 1, bilevel_method());
    t.run();
    const train::Checkpoint ck = train::read_checkpoint(dir(name) + "/last.ckpt");
    std::vector<at::Tensor> b;
    for (const auto& kv : ck.tensors)
      if (kv.first.rfind("bilevel.bridge.", 0) == 0) b.push_back(kv.second.reshape({-1}));
    return {t.net().flat().detach().clone(), at::cat(b)};
  }
  data::MemorySource src_ = population();
  std::string teacher_;
};

double rel(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

TEST_F(BilevelTrain, ClosedFormMixedTermTrainsLikeDoubleBackward) {
  for (const std::string labels : {"counterfactual", "factual_weights"}) {
    const auto a = run("closed_" + labels, {"bilevel.labels=" + labels});
    const auto b = run("autograd_" + labels, {"bilevel.labels=" + labels, "bilevel.mixed_term=autograd"});
    EXPECT_LT(rel(a.first, b.first), 1e-9) << labels;
    EXPECT_LT(rel(a.second, b.second), 1e-9) << labels;
  }
}

TEST_F(BilevelTrain, EveryVariantRunsAndMovesTheBridge) {
  const auto frozen = run("frozen", {"bilevel.warm_start_epochs=2"});  // no upper step: the bridge's initialisation
  int k = 0;
  for (const std::string v : {"bilevel.hypergradient=explicit", "bilevel.cg.hvp=gauss_newton",
                              "bilevel.labels=factual_weights", "bilevel.upper_dtype=same"}) {
    const auto r = run("variant_" + std::to_string(k++), {v});
    EXPECT_GT((r.second - frozen.second).abs().max().item<double>(), 1e-6) << v;
    EXPECT_TRUE(torch::isfinite(r.first).all().item<bool>()) << v;
  }
}

TEST_F(BilevelTrain, ANonFiniteHypergradientStopsNamingTheStepAndTheTerm) {
  try {
    run("nan", {"bilevel.inner_lr=1e300"});
    FAIL() << "expected a DataError";
  } catch (const DataError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("is not finite at upper step 1"), std::string::npos) << m;
    EXPECT_NE(m.find("bilevel:"), std::string::npos) << m;
  }
}

TEST_F(BilevelTrain, ResumeAgainstAnotherTeacherIsRefused) {
  run("resume_base", {"train.max_steps=5"});
  // another teacher: the same architecture, trained with another seed
  const std::string other = dir("teacher_other");
  {
    auto comm = dist::make_local_communicator();
    train::Trainer t(config(other, {"train.source=rct", "train.dtype=float64", "train.seed=9"}), src_, *comm, 1);
    t.run();
  }
  try {
    run("resume_other", {"train.resume=" + dir("resume_base") + "/last.ckpt", "bilevel.teacher=" + other + "/best.ckpt"});
    FAIL() << "expected a DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("resume with the same bilevel.teacher"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dfcl::bilevel
