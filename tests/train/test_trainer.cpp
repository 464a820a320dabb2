// \brief The trainer end to end on small in-memory synthetic trials: same-seed determinism, resume equality (bitwise
// on one thread), checkpoint round trip into a scoring model, fused == autograd, bad configs, and that training
// actually learns (regret well below random targeting).
#include <ATen/Parallel.h>  // for at::set_num_threads, at::get_num_threads
#include <gtest/gtest.h>
#include <torch/torch.h>  // for torch::equal, torch::allclose

#include <filesystem>  // for std::filesystem
#include <fstream>     // for std::ifstream
#include <string>      // for std::string

#include "core/config.h"          // for Config
#include "core/error.h"           // for ConfigError, DataError
#include "core/log.h"             // for log::set_level
#include "data/generator.h"       // for Generator
#include "data/source.h"          // for MemorySource
#include "dist/communicator.h"    // for make_local_communicator
#include "model/uplift_net.h"     // for UpliftNet
#include "train/checkpoint.h"     // for read_checkpoint
#include "train/trained_model.h"  // for load_trained_model, predict
#include "train/trainer.h"        // for Trainer

namespace dfcl::train {
namespace {

namespace fs = std::filesystem;

data::MemorySource make_data(int64_t rows = 6000, int features = 6, int arms = 3, uint64_t seed = 7) {
  data::GeneratorConfig g;
  g.rct_rows = rows;
  g.observational_rows = 0;
  g.features = features;
  g.arms = arms;
  g.seed = seed;
  g.arm_values.clear();
  g.rct_propensity.clear();
  for (int j = 0; j < arms; ++j) g.arm_values.push_back(j);
  g.validate();
  data::Generator gen(g);
  data::Table t;
  gen.fill(0, gen.rows(), t, 1);
  return data::MemorySource(gen.meta(), std::move(t), 1024);
}

std::string out_dir(const std::string& name) {
  const fs::path p = fs::path(::testing::TempDir()) / ("dfcl_trainer_" + name);
  fs::remove_all(p);
  return p.string();
}

// The base configuration of these tests, then `a.b=value` overrides.
Config make_config(const std::string& output, const std::vector<std::string>& sets = {}) {
  const std::string y = "train:\n  generate: true\n  epochs: 3\n  batch_size: 256\n  shuffle_buffer: 2048\n"
                        "  seed: 5\n  output: " + output + "\n"
                        "validation:\n  budgets: [0.5, 1.0]\n"
                        "model:\n  trunk: [16, 8]\n  cost_output: softplus\n"
                        "loss:\n  name: tsm_sl\n"
                        "optimizer:\n  name: adam\n  lr: 0.01\n";
  Config c = Config::from_string(y, "test.yaml");
  for (const auto& s : sets) c.set(s);
  return c;
}

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    threads_ = at::get_num_threads();
    at::set_num_threads(1);  // bitwise comparisons: one intra-op thread
    log::set_level(log::Level::kError);
  }
  void TearDown() override {
    at::set_num_threads(threads_);
    log::set_level(log::Level::kInfo);
  }
  int threads_ = 1;
};

at::Tensor train_once(data::RowSource& src, const Config& cfg, TrainResult* result = nullptr) {
  auto comm = dist::make_local_communicator();
  Trainer t(cfg, src, *comm, 1);
  TrainResult r = t.run();
  if (result) *result = r;
  return t.net().flat().detach().clone();
}

TEST_F(TrainerTest, SameSeedGivesIdenticalParametersAndMetrics) {
  auto src = make_data();
  TrainResult a, b;
  const at::Tensor pa = train_once(src, make_config(out_dir("det_a")), &a);
  const at::Tensor pb = train_once(src, make_config(out_dir("det_b")), &b);
  EXPECT_TRUE(torch::equal(pa, pb));
  ASSERT_EQ(a.history.size(), 3u);
  for (size_t e = 0; e < a.history.size(); ++e) {
    nlohmann::json ha = a.history[e], hb = b.history[e];
    ha["validation"].erase("seconds"), hb["validation"].erase("seconds");
    EXPECT_EQ(ha.dump(), hb.dump()) << "epoch " << e + 1;
  }
  // Another seed gives another model.
  const at::Tensor pc = train_once(src, make_config(out_dir("det_c"), {"train.seed=6"}));
  EXPECT_FALSE(torch::equal(pa, pc));
}

TEST_F(TrainerTest, ResumeAfterStepKEqualsTheUninterruptedRunBitwise) {
  auto src = make_data();
  const at::Tensor full = train_once(src, make_config(out_dir("full")));
  // Interrupt mid-epoch (step 7 of 18 per epoch) and at an epoch boundary, then resume each.
  for (int64_t k : {7, 18, 25}) {
    const std::string dir = out_dir("resume_" + std::to_string(k));
    TrainResult part;
    train_once(src, make_config(dir, {fmt::format("train.max_steps={}", k)}), &part);
    ASSERT_TRUE(part.partial) << k;
    ASSERT_EQ(part.steps, k);
    const Checkpoint ck = read_checkpoint(dir + "/last.ckpt");
    EXPECT_EQ(ck.step, k);
    Config cfg = Config::from_string(ck.config, "checkpoint");
    cfg.set("train.max_steps=0");
    cfg.set("train.resume=" + dir + "/last.ckpt");
    TrainResult rest;
    const at::Tensor resumed = train_once(src, cfg, &rest);
    EXPECT_TRUE(torch::equal(full, resumed)) << "resumed after step " << k << ": max |diff| "
                                             << (full - resumed).abs().max().item<double>();
    EXPECT_EQ(rest.history.size(), 3u);
  }
}

TEST_F(TrainerTest, CheckpointRoundTripGivesTheSameScores) {
  auto src = make_data();
  const std::string dir = out_dir("roundtrip");
  TrainResult r;
  const at::Tensor last = train_once(src, make_config(dir), &r);
  ASSERT_GT(r.best_epoch, 0);
  const TrainedModel m = load_trained_model(dir + "/last.ckpt");
  EXPECT_TRUE(torch::equal(m.net->flat(), last));
  m.check_compatible(src.meta(), "test data");
  // The scaler travelled too: predictions from the loaded model equal those of the checkpoint's own parameters.
  const metrics::ScoreTable a = predict(m, src.table());
  const TrainedModel again = load_trained_model(dir + "/last.ckpt");
  const metrics::ScoreTable b = predict(again, src.table());
  EXPECT_EQ(a.r, b.r);
  EXPECT_EQ(a.c, b.c);
  EXPECT_FALSE(m.scaler.identity());
  // The best checkpoint holds the best epoch's parameters, and metrics.jsonl one line per epoch.
  EXPECT_TRUE(fs::exists(dir + "/best.ckpt"));
  EXPECT_TRUE(fs::exists(dir + "/model.pt"));
  EXPECT_TRUE(fs::exists(dir + "/training_curve.svg"));
  std::ifstream f(dir + "/metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(f, line);) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["epoch"].get<int>(), ++lines);
    EXPECT_TRUE(j["validation"]["eom_mean"].is_number());
  }
  EXPECT_EQ(lines, 3);
  // A model checked against data with other features is refused by name.
  data::Meta other = src.meta();
  other.feature_names[2] = "renamed";
  try {
    m.check_compatible(other, "other.h5");
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("feature 2 is 'renamed'"), std::string::npos) << e.what();
  }
}

TEST_F(TrainerTest, InitFromStartsFromAnotherRunsParametersWithAFreshOptimiser) {
  auto src = make_data();
  const std::string dir = out_dir("init_src");
  const at::Tensor trained = train_once(src, make_config(dir));
  auto comm = dist::make_local_communicator();
  Trainer t(make_config(out_dir("init_dst"), {"train.init_from=" + dir + "/last.ckpt", "train.epochs=1"}), src, *comm, 1);
  EXPECT_TRUE(torch::equal(t.net().flat().detach(), trained));
  const TrainResult r = t.run();
  EXPECT_EQ(r.steps, 18);  // counters start anew: one epoch of 18 steps
  // Both at once is a config error.
  Config both = make_config(out_dir("init_both"), {"train.init_from=" + dir + "/last.ckpt", "train.resume=" + dir + "/last.ckpt"});
  EXPECT_THROW(Trainer(both, src, *comm, 1), ConfigError);
}

TEST_F(TrainerTest, FusedPathMatchesAutogradInFloat64) {
  auto src = make_data(3000);
  TrainResult fused, plain;
  const at::Tensor a = train_once(src, make_config(out_dir("fused"), {"train.dtype=float64", "train.epochs=1"}), &fused);
  const at::Tensor b =
      train_once(src, make_config(out_dir("autograd"), {"train.dtype=float64", "train.epochs=1", "train.fused=off"}), &plain);
  EXPECT_TRUE(fused.fused);
  EXPECT_FALSE(plain.fused);
  EXPECT_TRUE(torch::allclose(a, b, 1e-9, 1e-11)) << "max |diff| " << (a - b).abs().max().item<double>();
}

TEST_F(TrainerTest, AccumulatingTwoBatchesEqualsOneBatchOfTwiceTheSize) {
  // Rows reach batches in the same order whatever the batch size, so two accumulated batches of 128 hold the rows of
  // one batch of 256; with N_j = p_j N (propensity=design) the mean of their gradients is that batch's gradient. SGD
  // keeps the comparison linear. Same steps, same parameters to rounding (float64). 5800 rows: the training split's
  // size modulo 256 is below 128, so drop_last leaves the same rows out either way.
  auto src = make_data(5800);
  const std::vector<std::string> common{"train.dtype=float64", "train.propensity=design", "optimizer.name=sgd",
                                        "optimizer.lr=0.05", "train.shuffle_buffer=0"};
  std::vector<std::string> acc = common, big = common;
  acc.insert(acc.end(), {"train.batch_size=128", "train.accumulate=2"});
  big.push_back("train.batch_size=256");
  TrainResult ra, rb;
  const at::Tensor pa = train_once(src, make_config(out_dir("acc_a"), acc), &ra);
  const at::Tensor pb = train_once(src, make_config(out_dir("acc_b"), big), &rb);
  ASSERT_GT(rb.steps, 10);
  EXPECT_EQ(ra.steps, rb.steps);
  EXPECT_LE((pa - pb).abs().max().item<double>(), 1e-12 * pb.abs().max().item<double>());
  // without accumulation, batches of 128 take twice the steps and land elsewhere
  std::vector<std::string> small = common;
  small.push_back("train.batch_size=128");
  TrainResult rc;
  const at::Tensor pc = train_once(src, make_config(out_dir("acc_c"), small), &rc);
  EXPECT_EQ(rc.steps, 2 * rb.steps);
  EXPECT_GT((pc - pb).abs().max().item<double>(), 1e-6);
}

TEST_F(TrainerTest, LearnsDecisionsFarBetterThanRandomTargeting) {
  auto src = make_data(40000, 6, 3, 11);
  TrainResult r;
  train_once(src,
             make_config(out_dir("learn"), {"train.epochs=8", "train.batch_size=1024", "schedule.kind=cosine",
                                            "validation.metric=regret"}),
             &r);
  ASSERT_EQ(r.random_regret.size(), 2u);
  ASSERT_EQ(r.best.regret.size(), 2u);
  const double model = r.best.regret[0] + r.best.regret[1], random = r.random_regret[0] + r.random_regret[1];
  EXPECT_LT(model, 0.75 * random) << "model regret " << r.best.regret[0] << ", " << r.best.regret[1] << "; random "
                                 << r.random_regret[0] << ", " << r.random_regret[1];
  // The validation loss fell from the first epoch to the last.
  EXPECT_LT(r.history.back()["validation"]["loss"].get<double>(), r.history[0]["validation"]["loss"].get<double>());
}

TEST_F(TrainerTest, BadConfigsGiveClearErrors) {
  auto src = make_data(2000);
  auto comm = dist::make_local_communicator();
  auto expect_error = [&](const Config& cfg, const std::string& needle) {
    try {
      Trainer t(cfg, src, *comm, 1);
      FAIL() << "expected an error containing: " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string dir = out_dir("bad");
  {
    Config c = make_config(dir);
    c.set("loss.name=tsm_sll");
    expect_error(c, "tsm_sl");  // the message lists the known losses
  }
  {
    Config c = make_config(dir);
    c.set("model.trunk=[16, 0]");
    expect_error(c, "model.trunk");
  }
  {
    Config c = make_config(dir);
    c.set("optimizer.name=adagrad");
    expect_error(c, "optimizer.name");
  }
  {
    Config c = make_config(dir);
    c.set("train.batch_size=100000");
    expect_error(c, "lower train.batch_size");  // from the loader
  }
  {
    Config c = make_config(dir);
    c.set("validation.metric=accuracy");
    expect_error(c, "validation.metric");
  }
  {
    Config c = make_config(dir);
    c.set("train.resume=" + dir + "/nope.ckpt");
    expect_error(c, "nope.ckpt");
  }
}

}  // namespace
}  // namespace dfcl::train
