// \brief The trainer end to end on small in-memory synthetic trials: same-seed determinism, resume equality (bitwise
// on one thread), checkpoint round trip into a scoring model, fused == autograd, bad configs, and that training
// actually learns (regret well below random targeting).
#include <ATen/Parallel.h>  // for at::set_num_threads, at::get_num_threads
#include <gtest/gtest.h>
#include <torch/torch.h>  // for torch::equal, torch::allclose

#include <atomic>  // for std::atomic
#include <filesystem>  // for std::filesystem
#include <fstream>     // for std::ifstream
#include <string>      // for std::string

#include "core/config.h"          // for Config
#include "core/error.h"           // for ConfigError, DataError
#include "core/log.h"             // for log::set_level
#include "data/concat_source.h"   // for ConcatSource
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

// A source whose reads start failing after `fail_after` of them: a run that dies mid-epoch (kill -9 in the field)
// after writing periodic checkpoints.
class FailingSource : public data::RowSource {
 public:
  FailingSource(data::RowSource& inner, int64_t fail_after) : inner_(inner), fail_after_(fail_after) {}
  const data::Meta& meta() const override { return inner_.meta(); }
  int64_t chunk_rows() const override { return inner_.chunk_rows(); }
  void read(int64_t begin, int64_t count, data::Table& out) override {
    if (fail_after_ >= 0 && reads_.fetch_add(1) >= fail_after_) throw IoError("test: the source died");
    if (fail_after_ < 0) ++reads_;
    inner_.read(begin, count, out);
  }
  void read_source(int64_t begin, int64_t count, std::vector<uint8_t>& out) override {
    inner_.read_source(begin, count, out);
  }
  std::string name() const override { return inner_.name(); }
  int64_t reads() const { return reads_; }

 private:
  data::RowSource& inner_;
  int64_t fail_after_;
  std::atomic<int64_t> reads_{0};  // the prefetch thread and the caller read at once (RowSource's contract; TSan)
};

// Resumed from a periodic mid-epoch checkpoint (train.checkpoint_steps), the resumed epoch's train_loss is the
// uninterrupted run's: the checkpoint carries the loss of the steps since the last report (issue 14, item 5: it
// stored epoch_loss 0 with epoch_steps 12, and the resumed epoch reported 7.9 against 18.8).
TEST_F(TrainerTest, ResumeFromAPeriodicCheckpointKeepsTheEpochsTrainLoss) {
  auto src = make_data();
  const std::vector<std::string> sets = {"train.checkpoint_steps=5"};
  TrainResult full;
  train_once(src, make_config(out_dir("ckpt_full"), sets), &full);
  FailingSource count(src, -1);
  train_once(count, make_config(out_dir("ckpt_count"), sets));
  // Die at every possible read until a run dies after a mid-epoch checkpoint (reads are prefetched, so which step a
  // failed read stops depends on the loader; the first such read is kept).
  std::string dir;
  Checkpoint ck;
  for (int64_t k = 1; k < count.reads() && dir.empty(); ++k) {
    const std::string d = out_dir("ckpt_dies_" + std::to_string(k));
    FailingSource dies(src, k);
    EXPECT_THROW(train_once(dies, make_config(d, sets)), IoError);
    if (!fs::exists(d + "/last.ckpt")) continue;
    ck = read_checkpoint(d + "/last.ckpt");
    if (ck.step % 18 != 0) dir = d;
  }
  ASSERT_FALSE(dir.empty()) << "no run died after a mid-epoch checkpoint (" << count.reads() << " reads)";
  ASSERT_GT(ck.step % 18, 0) << "the run should have died mid-epoch (18 steps per epoch), after step " << ck.step;
  Config cfg = Config::from_string(ck.config, "checkpoint");
  cfg.set("train.resume=" + dir + "/last.ckpt");
  TrainResult rest;
  train_once(src, cfg, &rest);
  ASSERT_EQ(rest.history.size(), full.history.size());
  for (size_t e = 0; e < full.history.size(); ++e) {
    const double a = full.history[e]["train_loss"].get<double>(), b = rest.history[e]["train_loss"].get<double>();
    EXPECT_NEAR(b, a, 1e-9 * std::abs(a)) << "epoch " << e + 1 << " (resumed after step " << ck.step << ")";
  }
}

// Resuming a run that has done all its epochs trains nothing and writes nothing: a ConfigError that says how to
// continue (it claimed to have written files; issue 14, item 11).
TEST_F(TrainerTest, ResumingAFinishedRunSaysHowToContinue) {
  auto src = make_data(3000);
  const std::string dir = out_dir("finished");
  train_once(src, make_config(dir, {"train.epochs=2"}));
  Config cfg = Config::from_string(read_checkpoint(dir + "/last.ckpt").config, "checkpoint");
  cfg.set("train.resume=" + dir + "/last.ckpt");
  const auto before = fs::last_write_time(dir + "/metrics.jsonl");
  try {
    train_once(src, cfg);
    FAIL() << "resumed a finished run";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("has finished 2 epoch(s): nothing is left to train"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(fs::last_write_time(dir + "/metrics.jsonl"), before);
  cfg.set("train.epochs=3");
  TrainResult more;
  train_once(src, cfg, &more);
  EXPECT_EQ(more.history.size(), 3u);
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

// A trial file and a log file of one population, read as one dataset (what `train.data: [trial.h5, log.h5]` opens).
data::ConcatSource trial_and_log(int64_t trial_rows = 4000, int64_t log_rows = 6000) {
  std::vector<std::unique_ptr<data::RowSource>> parts;
  for (auto [rct, obs] : {std::pair<int64_t, int64_t>{trial_rows, 0}, {0, log_rows}}) {
    data::GeneratorConfig g;
    g.rct_rows = rct, g.observational_rows = obs, g.features = 6, g.arms = 3, g.seed = 7;
    data::Generator gen(g);
    data::Table t;
    gen.fill(0, gen.rows(), t, 1);
    parts.push_back(std::make_unique<data::MemorySource>(gen.meta(), std::move(t), 1024));
  }
  return data::ConcatSource(std::move(parts), "train.data");
}

TEST_F(TrainerTest, TrialAndLogFromTwoFilesTrainOnBothAndResumeBitwise) {
  data::ConcatSource src = trial_and_log();
  const std::vector<std::string> all{"train.source=all"};
  TrainResult full_r;
  const at::Tensor full = train_once(src, make_config(out_dir("concat_full"), all), &full_r);
  // Every epoch runs over the training rows of both files (trial rows alone would give 12 batches of 256).
  int64_t rows = 0;
  for (int64_t r = 0; r < src.meta().num_rows; ++r) rows += data::SplitSpec{}.of(src.split_key(r)) == data::Split::kTrain;
  EXPECT_EQ(full_r.steps, 3 * (rows / 256));
  EXPECT_GT(rows / 256, 20);
  // Interrupted mid-epoch and resumed: the same parameters, bit for bit.
  const std::string dir = out_dir("concat_part");
  std::vector<std::string> part = all;
  part.push_back("train.max_steps=31");
  train_once(src, make_config(dir, part));
  Config cfg = Config::from_string(read_checkpoint(dir + "/last.ckpt").config, "checkpoint");
  cfg.set("train.max_steps=0");
  cfg.set("train.resume=" + dir + "/last.ckpt");
  const at::Tensor resumed = train_once(src, cfg);
  EXPECT_TRUE(torch::equal(full, resumed)) << "max |diff| " << (full - resumed).abs().max().item<double>();
  // Trial rows only: other batches, another model.
  const at::Tensor trial_only = train_once(src, make_config(out_dir("concat_rct")));
  EXPECT_FALSE(torch::equal(full, trial_only));
}

TEST_F(TrainerTest, AutoHeadsFitTheLabelsAndTheChoiceTravelsWithTheCheckpoint) {
  auto src = make_data(3000);
  const std::string dir = out_dir("heads");
  // make_config sets cost_output: softplus; the revenue head is auto. The revenue labels are >= 0 and reach 10 and
  // more, so auto is softplus; the checkpoint's config holds the resolved heads and the loaded net uses them.
  train_once(src, make_config(dir, {"train.epochs=1"}));
  const Config ck = Config::from_string(read_checkpoint(dir + "/last.ckpt").config, "checkpoint");
  EXPECT_EQ(ck.get<std::string>("model.revenue_output", ""), "softplus");
  EXPECT_EQ(ck.get<std::string>("model.cost_output", ""), "softplus");
  EXPECT_EQ(load_trained_model(dir + "/last.ckpt").net->config().revenue_output, "softplus");
  // Binary labels get the sigmoid.
  data::Table t = src.table();
  for (auto& y : t.revenue) y = y > 0 ? 1.f : 0.f;
  for (auto& y : t.cost) y = y > 0 ? 1.f : 0.f;
  data::MemorySource binary(src.meta(), t, 1024);
  const std::string bdir = out_dir("heads_binary");
  train_once(binary, make_config(bdir, {"train.epochs=1", "model.cost_output=auto"}));
  const Config bck = Config::from_string(read_checkpoint(bdir + "/last.ckpt").config, "checkpoint");
  EXPECT_EQ(bck.get<std::string>("model.revenue_output", ""), "sigmoid");
  EXPECT_EQ(bck.get<std::string>("model.cost_output", ""), "sigmoid");
  // A sigmoid head on revenue of scale 1-10 is an error that names the key, the labels and the fix.
  auto comm = dist::make_local_communicator();
  try {
    Trainer bad(make_config(out_dir("heads_bad"), {"model.revenue_output=sigmoid"}), src, *comm, 1);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("model.revenue_output = sigmoid limits the predicted revenue to (0, 1)"), std::string::npos) << m;
    EXPECT_NE(m.find("Use model.revenue_output=auto (it picks softplus"), std::string::npos) << m;
  }
}

TEST(BestSoFar, AnEpochThatOverspendsNeverReplacesOneThatMeetsTheBudgets) {
  ValidationConfig eom;  // metric eom, higher is better
  ValidationConfig loss;
  loss.metric = SelectMetric::kLoss;
  ValidationResult meets, over, worse_over;
  over.meets_budgets = worse_over.meets_budgets = false;
  over.overspend = 0.5, worse_over.overspend = 2.0;
  BestSoFar best;
  EXPECT_TRUE(best.improved_by(over, 1.0, eom)) << "the first validation is the best so far";
  best.take(meets, 1.20, 1);
  EXPECT_FALSE(best.improved_by(over, 1.49, eom)) << "higher EOM, but its decisions overspend";
  EXPECT_TRUE(best.improved_by(meets, 1.21, eom));
  EXPECT_FALSE(best.improved_by(meets, 1.19, eom));
  best.take(over, 1.49, 2);  // as if only overspending epochs had been seen
  EXPECT_TRUE(best.improved_by(meets, 0.9, eom)) << "meeting the budgets beats any overspending EOM";
  EXPECT_TRUE(best.improved_by(ValidationResult{}, 0.1, eom));
  EXPECT_FALSE(best.improved_by(worse_over, 9.0, eom)) << "among overspenders the smaller overspend wins";
  ValidationResult less_over = over;
  less_over.overspend = 0.1;
  EXPECT_TRUE(best.improved_by(less_over, 0.5, eom));
  // Other metrics keep their own order (the loss: lower is better), whatever the spend.
  BestSoFar by_loss;
  by_loss.take(meets, 16.5, 1);
  EXPECT_TRUE(by_loss.improved_by(over, 16.4, loss));
  EXPECT_FALSE(by_loss.improved_by(meets, 16.6, loss));
}

}  // namespace
}  // namespace dfcl::train

namespace dfcl::train {
namespace {

// validation.keep_best: one run keeps, beside best.ckpt (metric eom), the best epoch by the DR estimate and by the
// oracle regret, each the epoch its metric's history says, and they do not change the training.
TEST_F(TrainerTest, KeepBestWritesTheBestEpochOfEachOtherMetric) {
  data::MemorySource src = make_data(6000, 6, 3, 7);
  TrainResult with, without;
  const std::string dir = out_dir("keep_best");
  const at::Tensor a = train_once(src, make_config(dir, {"train.epochs=6", "validation.metric=eom",
                                                         "validation.keep_best=[dr_eom, regret]"}), &with);
  const at::Tensor b = train_once(src, make_config(out_dir("keep_best_off"), {"train.epochs=6", "validation.metric=eom"}),
                                  &without);
  EXPECT_TRUE(a.equal(b));
  EXPECT_EQ(with.best_epoch, without.best_epoch);
  int64_t dr_best = -1, regret_best = -1;
  double dr = -1e300, regret = 1e300;
  for (const auto& rec : with.history) {
    const auto& v = rec["validation"];
    if (v["dr"]["eom_mean"].get<double>() > dr) dr = v["dr"]["eom_mean"], dr_best = rec["epoch"];
    if (v["regret_mean"].get<double>() < regret) regret = v["regret_mean"], regret_best = rec["epoch"];
  }
  // The DR-selected epoch: the highest DR EOM among epochs whose DR spend meets the budgets (all do here, checked).
  for (const auto& rec : with.history) ASSERT_TRUE(rec["validation"]["dr"]["meets_budgets"].get<bool>());
  EXPECT_EQ(read_checkpoint(dir + "/best_dr_eom.ckpt").epoch, dr_best);
  EXPECT_EQ(read_checkpoint(dir + "/best_regret.ckpt").epoch, regret_best);
  EXPECT_THROW(TrainConfig::from(make_config(dir, {"validation.keep_best=[bogus]"})), ConfigError);
}

}  // namespace
}  // namespace dfcl::train
