// \brief Data-parallel training under `mpiexec -n 2`: 2 ranks x b against 1 rank x 2b (the same global batches, as
// logical shards make them), to 1e-6 relative in float32 and bit for bit in the float64 deterministic mode; resume
// across world sizes (2 -> 1 and 1 -> 2) reproduces the uninterrupted run; uneven shards finish. Each process also
// runs the one-rank reference itself (a local communicator), so the comparison needs no file exchange.
#include <ATen/Parallel.h>  // for at::set_num_threads
#include <gtest/gtest.h>
#include <torch/torch.h>  // for torch::equal

#include <unistd.h>  // for getpid

#include <cmath>       // for std::nextafter
#include <cstdio>      // for std::printf
#include <filesystem>  // for std::filesystem
#include <memory>      // for std::unique_ptr
#include <string>      // for std::string
#include <vector>      // for std::vector

#include "core/config.h"        // for Config
#include "core/error.h"         // for ConfigError
#include "core/log.h"           // for log::set_level
#include "data/concat_source.h"  // for ConcatSource
#include "data/generator.h"     // for Generator
#include "data/source.h"        // for MemorySource
#include "dist/communicator.h"  // for make_communicator, make_local_communicator
#include "dist/consistency.h"   // for check_replicas
#include "model/uplift_net.h"   // for UpliftNet
#include "train/trainer.h"      // for Trainer
#include "bilevel/bilevel.h"    // for bilevel_method
#include "train/checkpoint.h"  // for read_checkpoint

namespace dfcl::train {
namespace {

namespace fs = std::filesystem;

dist::Communicator& world() {
  static std::unique_ptr<dist::Communicator> c = [] {
    dist::CommOptions o;
    o.backend = "mpi";
    o.timeout_s = 120;
    return dist::make_communicator(o);
  }();
  return *c;
}

// A directory every rank agrees on (rank 0's pid), with a per-rank variant for one-rank runs.
std::string shared_dir(const std::string& name) {
  const auto pid = world().allgather({double(::getpid())});
  return (fs::path(::testing::TempDir()) / ("dfcl_dist_" + std::to_string(int64_t(pid[0][0])) + "_" + name)).string();
}
std::string own_dir(const std::string& name) { return shared_dir(name) + "_rank" + std::to_string(world().rank()); }

data::MemorySource make_data(int64_t rows, uint64_t seed = 11) {
  data::GeneratorConfig g;
  g.rct_rows = rows;
  g.observational_rows = 0;
  g.features = 6;
  g.arms = 3;
  g.seed = seed;
  g.arm_values = {0, 1, 2};
  g.rct_propensity.clear();
  g.validate();
  data::Generator gen(g);
  data::Table t;
  gen.fill(0, gen.rows(), t, 1);
  return data::MemorySource(gen.meta(), std::move(t), 1000);
}

Config make_config(const std::string& output, const std::vector<std::string>& sets) {
  const std::string y = "train:\n  generate: true\n  epochs: 2\n  batch_size: 512\n  shuffle_buffer: 2048\n"
                        "  seed: 3\n  logical_shards: 2\n  output: " + output + "\n"
                        "validation:\n  budgets: [0.5]\n"
                        "model:\n  trunk: [16, 8]\n  cost_output: softplus\n"
                        "loss:\n  name: tsm_sl\n"
                        "optimizer:\n  name: adam\n  lr: 0.01\n";
  Config c = Config::from_string(y, "test.yaml");
  for (const auto& s : sets) c.set(s);
  return c;
}

// Trains on `comm` and returns the final parameters (float64 copy) and the number of steps.
at::Tensor train_on(dist::Communicator& comm, data::RowSource& src, const Config& cfg, int64_t* steps = nullptr) {
  Trainer t(cfg, src, comm, 1, cfg.has("bilevel") ? bilevel::bilevel_method() : StepMethodFactory{});
  const TrainResult r = t.run();
  if (steps) *steps = r.steps;
  return t.net().flat().detach().to(at::kDouble).clone();
}
at::Tensor train_local(data::RowSource& src, const Config& cfg, int64_t* steps = nullptr) {
  auto local = dist::make_local_communicator();
  return train_on(*local, src, cfg, steps);
}

double rel_diff(const at::Tensor& a, const at::Tensor& ref) {
  return (a - ref).abs().max().item<double>() / ref.abs().max().item<double>();
}

class DistTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(1);
    log::set_level(log::Level::kError);
    ASSERT_EQ(world().size(), 2) << "run this test under mpiexec -n 2";
  }
};

// 2 ranks x 256 rows against 1 rank x 512 rows (the same global batches): float32, fused path, k = 2 epochs.
void expect_equivalent(const std::vector<std::string>& sets, double tol, const std::string& name) {
  data::MemorySource src = make_data(8000);
  int64_t s1 = 0, s2 = 0;
  const at::Tensor one = train_local(src, make_config(own_dir(name + "_one"), sets), &s1);
  const at::Tensor two = train_on(world(), src, make_config(shared_dir(name + "_two"), sets), &s2);
  EXPECT_EQ(s1, s2);
  EXPECT_GT(s1, 10);
  const double d = rel_diff(two, one);
  EXPECT_LE(d, tol) << name << ": max |2 ranks - 1 rank| / max |1 rank| after " << s1 << " steps";
  if (world().rank() == 0)
    std::printf("%s: %lld steps, max |2 ranks - 1 rank| / max |1 rank| = %.3g\n", name.c_str(), (long long)s1, d);
  // every rank holds the same parameters (the all-reduce result is identical everywhere)
  const auto sums = world().allgather({two.sum().item<double>(), two.abs().max().item<double>()});
  EXPECT_EQ(sums[0], sums[1]);
}

TEST_F(DistTrain, TsmSlTwoRanksEqualOneRankWithTheSameGlobalBatch) {
  expect_equivalent({}, 1e-6, "tsm_sl");
}

// Every parameter of [256, 256] is larger than both bucket caps, so each gets a bucket of its own and several
// two-stage all-reduces are in flight at once; their second stages must start in the same order on every rank (the
// crash of issue 14: MPI_ERR_TRUNCATE with model.trunk=[512,512] under mpirun -n 2).
// Bucketing cannot change the sums (each element is added in rank order whatever bucket carries it), so 2 ranks with
// one bucket per parameter equal 2 ranks with a single bucket bitwise, and 1 rank to float32 rounding of the wider net.
TEST_F(DistTrain, ParametersLargerThanBothBucketCapsTwoRanksEqualOneRank) {
  const std::vector<std::string> big = {"model.trunk=[256, 256]"};
  std::vector<std::string> small_buckets = big;
  small_buckets.push_back("dist.bucket_mb=0.0625");
  small_buckets.push_back("dist.first_bucket_mb=0.03125");
  expect_equivalent(small_buckets, 2e-5, "big_parameters");
  data::MemorySource src = make_data(8000);
  const at::Tensor many = train_on(world(), src, make_config(shared_dir("big_many"), small_buckets));
  const at::Tensor one_bucket = train_on(world(), src, make_config(shared_dir("big_one"), big));
  EXPECT_TRUE(torch::equal(many, one_bucket)) << "bucketing changed the 2-rank result: " << rel_diff(many, one_bucket);
}

TEST_F(DistTrain, IfdTwoRanksEqualOneRank) {
  // IFD's self-normalised (Hajek) sums and its clip bound are reduced across ranks inside the loss.
  expect_equivalent({"loss.name=ifd"}, 1e-6, "ifd");
}

TEST_F(DistTrain, PplTwoRanksEqualOneRank) {
  // PPL's λ* bisection reduces its IPW sums across ranks each iteration.
  expect_equivalent({"loss.name=ppl", "loss.budgets=[0.5]"}, 1e-6, "ppl");
}

TEST_F(DistTrain, Float64DeterministicModeIsBitwiseEqualAcrossWorldSizes) {
  data::MemorySource src = make_data(8000);
  const std::vector<std::string> sets{"train.dtype=float64", "dist.deterministic=true"};
  const at::Tensor one = train_local(src, make_config(own_dir("det_one"), sets));
  const at::Tensor two = train_on(world(), src, make_config(shared_dir("det_two"), sets));
  EXPECT_TRUE(torch::equal(one, two)) << "max diff " << (one - two).abs().max().item<double>();
  // The deterministic mode is also the ordinary result to rounding (it only fixes the summation order).
  const at::Tensor plain = train_local(src, make_config(own_dir("det_plain"), {"train.dtype=float64"}));
  EXPECT_LE(rel_diff(one, plain), 1e-9);
}

TEST_F(DistTrain, DeterministicModeRejectsLossesThatReduceInsideTheirGradient) {
  data::MemorySource src = make_data(4000);
  try {
    train_on(world(), src,
             make_config(shared_dir("det_ppl"), {"dist.deterministic=true", "loss.name=ppl", "loss.budgets=[0.5]"}));
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("dist.deterministic: loss ppl reduces batch statistics"), std::string::npos)
        << e.what();
  }
}

TEST_F(DistTrain, ResumeAcrossWorldSizesReproducesTheUninterruptedRun) {
  data::MemorySource src = make_data(8000);
  const std::vector<std::string> det{"train.dtype=float64", "dist.deterministic=true", "train.epochs=3"};
  int64_t total = 0;
  const at::Tensor full = train_local(src, make_config(own_dir("res_full"), det), &total);
  ASSERT_GT(total, 20);
  std::vector<std::string> stop = det;
  stop.push_back("train.max_steps=" + std::to_string(total / 2 + 3));  // mid-epoch
  // 2 ranks -> 1 rank: both ranks train to the stop, rank 0 writes; each process then resumes alone.
  const std::string d2 = shared_dir("res_two");
  train_on(world(), src, make_config(d2, stop));
  world().barrier();  // rank 0's checkpoint writer has joined when run() returned
  Config c1 = make_config(own_dir("res_two_to_one"), det);
  c1.set("train.resume=" + d2 + "/last.ckpt");
  int64_t steps = 0;
  const at::Tensor resumed1 = train_local(src, c1, &steps);
  EXPECT_EQ(steps, total);
  EXPECT_TRUE(torch::equal(resumed1, full)) << "2 -> 1: max diff " << (resumed1 - full).abs().max().item<double>();
  // 1 rank -> 2 ranks: rank 0's one-rank run writes the checkpoint both ranks resume from.
  const std::string d1 = shared_dir("res_one");
  if (world().rank() == 0) train_local(src, make_config(d1, stop));
  world().barrier();
  Config c2 = make_config(shared_dir("res_one_to_two"), det);
  c2.set("train.resume=" + d1 + "/last.ckpt");
  const at::Tensor resumed2 = train_on(world(), src, c2, &steps);
  EXPECT_EQ(steps, total);
  EXPECT_TRUE(torch::equal(resumed2, full)) << "1 -> 2: max diff " << (resumed2 - full).abs().max().item<double>();
}

TEST_F(DistTrain, TrialAndLogFromTwoFilesTwoRanksEqualOneRank) {
  // train.data: [trial, log] with train.source: all, as one dataset (ConcatSource): 2 ranks x b against 1 rank x 2b,
  // to rounding in float32 and bit for bit in the float64 deterministic mode.
  auto part = [](int64_t rct, int64_t obs) -> std::unique_ptr<data::RowSource> {
    data::GeneratorConfig g;
    g.rct_rows = rct, g.observational_rows = obs, g.features = 6, g.arms = 3, g.seed = 11, g.arm_values = {0, 1, 2};
    data::Generator gen(g);
    data::Table t;
    gen.fill(0, gen.rows(), t, 1);
    return std::make_unique<data::MemorySource>(gen.meta(), std::move(t), 1000);
  };
  std::vector<std::unique_ptr<data::RowSource>> parts;
  parts.push_back(part(3000, 0));
  parts.push_back(part(0, 6000));
  data::ConcatSource src(std::move(parts), "train.data");
  int64_t s1 = 0, s2 = 0;
  const std::vector<std::string> all{"train.source=all"};
  const at::Tensor one = train_local(src, make_config(own_dir("concat_one"), all), &s1);
  const at::Tensor two = train_on(world(), src, make_config(shared_dir("concat_two"), all), &s2);
  EXPECT_EQ(s1, s2);
  EXPECT_GT(s1, 20) << "both files' training rows";
  const double d = rel_diff(two, one);
  EXPECT_LE(d, 1e-6);
  if (world().rank() == 0) std::printf("trial + log: %lld steps, max |2 ranks - 1 rank| / max |1 rank| = %.3g\n",
                                       (long long)s1, d);
  std::vector<std::string> det = all;
  det.insert(det.end(), {"train.dtype=float64", "dist.deterministic=true"});
  const at::Tensor one_det = train_local(src, make_config(own_dir("concat_det_one"), det));
  const at::Tensor two_det = train_on(world(), src, make_config(shared_dir("concat_det_two"), det));
  EXPECT_TRUE(torch::equal(one_det, two_det)) << "max diff " << (one_det - two_det).abs().max().item<double>();
}

TEST_F(DistTrain, UnevenShardsPadAndFinishOnEveryRank) {
  // 8001 rows: the logical shards' training rows differ; remainder=pad gives every shard the same batch count
  // (padding rows weigh 0), so both ranks issue the same collectives and finish, with the one-rank result.
  data::MemorySource src = make_data(8001);
  const std::vector<std::string> pad{"train.remainder=pad", "train.batch_size=500"};
  int64_t s1 = 0, s2 = 0;
  const at::Tensor one = train_local(src, make_config(own_dir("pad_one"), pad), &s1);
  const at::Tensor two = train_on(world(), src, make_config(shared_dir("pad_two"), pad), &s2);
  EXPECT_EQ(s1, s2);
  EXPECT_LE(rel_diff(two, one), 1e-6);
}

}  // namespace
}  // namespace dfcl::train

namespace dfcl::train {
namespace {

TEST_F(DistTrain, DebugModeRunsCleanAndADivergedReplicaIsNamed) {
  data::MemorySource src = make_data(4000);
  // dist.debug: every collective checked across ranks first, parameter checksums after every step: no false alarm.
  const at::Tensor a = train_on(world(), src, make_config(shared_dir("debug"), {"dist.debug=true", "train.epochs=1"}));
  const at::Tensor b = train_on(world(), src, make_config(shared_dir("nodebug"), {"train.epochs=1"}));
  EXPECT_TRUE(torch::equal(a, b)) << "the checks do not change the result";
  // A replica that differs in one bit is caught on every rank, naming the rank.
  at::Tensor p = at::arange(10, at::kDouble);
  if (world().rank() == 1) p[3] = std::nextafter(3.0, 4.0);
  try {
    dist::check_replicas(world(), p, "parameters after step 7");
    FAIL() << "expected a DistError";
  } catch (const DistError& e) {
    EXPECT_NE(std::string(e.what()).find("parameters after step 7 differ between rank 0 and rank(s) 1"),
              std::string::npos)
        << e.what();
  }
  dist::check_replicas(world(), at::arange(10, at::kDouble), "identical");  // and then all is well again
}

// ------------------------------------------------------------------------------------------------- Bi-DFCL
// A trial (3000 rows) and a selection-biased log (9000 rows) in one population; the lower level data parallel on the
// log, the trial batch of each upper step split over the ranks. Every process first trains the same TSM-SL teacher
// alone (the same bits in each), so the comparisons isolate the bi-level step.
data::MemorySource make_trial_and_log() {
  data::GeneratorConfig g;
  g.rct_rows = 3000, g.observational_rows = 9000, g.features = 6, g.arms = 3, g.seed = 11, g.arm_values = {0, 1, 2};
  g.validate();
  data::Generator gen(g);
  data::Table t;
  gen.fill(0, gen.rows(), t, 1);
  return data::MemorySource(gen.meta(), std::move(t), 1000);
}

std::vector<std::string> bilevel_sets(const std::string& teacher, std::vector<std::string> more = {}) {
  std::vector<std::string> s{"train.source=observational",
                             "train.epochs=4",
                             "loss={name: ppl, budgets: [0.5], lambda_source: sample, alpha: 0, tau: 0.5}",
                             "bilevel.teacher=" + teacher,
                             "bilevel.k=2",
                             "bilevel.warm_start_epochs=0",
                             "bilevel.rct_batch=1024",
                             "bilevel.cg.iterations=10",
                             "bilevel.cg.tol=0"};  // a fixed number of products: a stop that flips on rounding is a jump
  s.insert(s.end(), more.begin(), more.end());
  return s;
}

std::string local_teacher(data::RowSource& src, const std::string& dtype) {
  const std::string dir = own_dir("teacher_" + dtype);
  if (!fs::exists(dir + "/best.ckpt"))
    train_local(src, make_config(dir, {"train.source=rct", "train.dtype=" + dtype, "validation.metric=loss"}));
  return dir + "/best.ckpt";
}

// The bridge's parameters in a run's last checkpoint (float64, flat).
at::Tensor bridge_of(const std::string& dir) {
  const Checkpoint ck = read_checkpoint(dir + "/last.ckpt");
  std::vector<at::Tensor> parts;
  for (const auto& kv : ck.tensors)
    if (kv.first.rfind("bilevel.bridge.", 0) == 0) parts.push_back(kv.second.reshape({-1}).to(at::kDouble));
  return at::cat(parts);
}

int64_t upper_steps_of(const std::string& dir) {
  return read_checkpoint(dir + "/last.ckpt").state["bilevel"]["upper_steps"].get<int64_t>();
}

TEST_F(DistTrain, BilevelTwoRanksEqualOneRankInFloat32) {
  data::MemorySource src = make_trial_and_log();
  const auto sets = bilevel_sets(local_teacher(src, "float32"));
  const std::string d1 = own_dir("bi_one"), d2 = shared_dir("bi_two");
  int64_t s1 = 0, s2 = 0;
  const at::Tensor one = train_local(src, make_config(d1, sets), &s1);
  const at::Tensor two = train_on(world(), src, make_config(d2, sets), &s2);
  world().barrier();
  EXPECT_EQ(s1, s2);
  ASSERT_GE(upper_steps_of(d1), 20);
  EXPECT_EQ(upper_steps_of(d1), upper_steps_of(d2));
  const at::Tensor b1 = bridge_of(d1), b2 = bridge_of(d2);
  const double dt = rel_diff(two, one), dp = (b2 - b1).norm().item<double>() / b1.norm().item<double>();
  EXPECT_LE(dt, 1e-6) << "target: max |2 ranks - 1 rank| / max |1 rank|";
  EXPECT_LE(dp, 1e-6) << "bridge: |2 ranks - 1 rank| / |1 rank|";
  auto frozen = sets;  // every epoch a warm-start epoch: the bridge keeps its initialisation
  frozen.push_back("bilevel.warm_start_epochs=4");
  train_local(src, make_config(d1 + "_frozen", frozen));
  EXPECT_EQ(upper_steps_of(d1 + "_frozen"), 0);
  EXPECT_GT((b1 - bridge_of(d1 + "_frozen")).abs().max().item<double>(), 1e-4) << "the upper steps moved the bridge";
  if (world().rank() == 0)
    std::printf("bi-dfcl float32: %lld steps, %lld upper steps, target %.3g, bridge %.3g\n", (long long)s1,
                (long long)upper_steps_of(d1), dt, dp);
}

TEST_F(DistTrain, BilevelFloat64DeterministicIsBitwiseAndResumesAcrossWorldSizes) {
  data::MemorySource src = make_trial_and_log();
  const auto det = bilevel_sets(local_teacher(src, "float64"), {"train.dtype=float64", "dist.deterministic=true"});
  const std::string full_dir = own_dir("bid_full");
  int64_t total = 0;
  const at::Tensor one = train_local(src, make_config(full_dir, det), &total);
  const std::string two_dir = shared_dir("bid_two");
  const at::Tensor two = train_on(world(), src, make_config(two_dir, det));
  world().barrier();
  EXPECT_TRUE(torch::equal(one, two)) << "target: max diff " << (one - two).abs().max().item<double>();
  EXPECT_TRUE(torch::equal(bridge_of(full_dir), bridge_of(two_dir))) << "bridge";
  // stop mid-epoch on 2 ranks, resume on 1 (and the other way round): the uninterrupted run's bits
  std::vector<std::string> stop = det;
  stop.push_back("train.max_steps=" + std::to_string(total / 2 + 3));
  const std::string d2 = shared_dir("bid_res_two");
  train_on(world(), src, make_config(d2, stop));
  world().barrier();
  Config c1 = make_config(own_dir("bid_res_two_to_one"), det);
  c1.set("train.resume=" + d2 + "/last.ckpt");
  int64_t steps = 0;
  const at::Tensor r1 = train_local(src, c1, &steps);
  EXPECT_EQ(steps, total);
  EXPECT_TRUE(torch::equal(r1, one)) << "2 -> 1: max diff " << (r1 - one).abs().max().item<double>();
  EXPECT_TRUE(torch::equal(bridge_of(own_dir("bid_res_two_to_one")), bridge_of(full_dir))) << "2 -> 1 bridge";
  const std::string d1 = shared_dir("bid_res_one");
  if (world().rank() == 0) train_local(src, make_config(d1, stop));
  world().barrier();
  Config c2 = make_config(shared_dir("bid_res_one_to_two"), det);
  c2.set("train.resume=" + d1 + "/last.ckpt");
  const at::Tensor r2 = train_on(world(), src, c2, &steps);
  EXPECT_EQ(steps, total);
  EXPECT_TRUE(torch::equal(r2, one)) << "1 -> 2: max diff " << (r2 - one).abs().max().item<double>();
}

}  // namespace
}  // namespace dfcl::train
