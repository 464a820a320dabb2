// \brief The MPI communicator on 1, 2 and 3 ranks (mpiexec -n W dfcl_test_comm): every collective against its closed
// form, bitwise-identical results across ranks, async all-reduces completed out of order, sequence numbers, the debug
// check's mismatch messages, the tensor checks, and the `dist` config section / backend choice.
//
// Own main(): every rank runs every test in the same order; rank 0 prints gtest's usual output, the other ranks print
// only their failures (prefixed "[rank R]"), and the exit code is non-zero on every rank when any rank failed.
// Tests use EXPECT (not ASSERT) between collectives, so a failing rank still issues the same collectives.
#include <gtest/gtest.h>  // for TEST, EXPECT_EQ
#include <torch/torch.h>  // for torch::arange, torch::ones

#include <chrono>   // for std::chrono::steady_clock
#include <cstdint>  // for int64_t, uint64_t
#include <cstdio>   // for std::printf
#include <cstdlib>  // for setenv, unsetenv
#include <cstring>  // for std::memcpy
#include <random>   // for std::mt19937_64
#include <thread>   // for std::this_thread::sleep_for

#include "core/config.h"            // for Config
#include "core/error.h"             // for DistError, ConfigError
#include "dist/communicator.h"      // for Communicator, CommOptions, make_communicator
#include "dist/mpi_communicator.h"  // for MpiCommunicator

using namespace dfcl;
using dist::ReduceOp;

namespace {

std::unique_ptr<dist::Communicator> g_comm;
dist::Communicator& comm() { return *g_comm; }
int W() { return g_comm->size(); }
int R() { return g_comm->rank(); }

/// FNV-1a over a tensor's bytes.
uint64_t checksum(const at::Tensor& t) {
  const auto* p = static_cast<const unsigned char*>(t.data_ptr());
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < t.nbytes(); ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

/// Every rank's checksum of `t` (as two exact 32-bit halves per rank).
std::vector<uint64_t> checksums(const at::Tensor& t) {
  const uint64_t h = checksum(t);
  const auto all = comm().allgather({double(h >> 32), double(h & 0xffffffffu)});
  std::vector<uint64_t> out;
  for (const auto& v : all) out.push_back((uint64_t(v[0]) << 32) | uint64_t(v[1]));
  return out;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DistError& e) {
    return e.what();
  }
  return "(no DistError)";
}

// ---- all-reduce against closed forms ----

/// x_i on rank r = (r + 1) * (i % 1000) + 0.25: small integers plus a quarter, so every float32 sum is exact.
at::Tensor ramp(int64_t n, at::ScalarType dt, int rank) {
  auto i = torch::arange(n, torch::kDouble).remainder(1000);
  auto x = dt == at::kLong ? (i * (rank + 1)) : (i * (rank + 1) + 0.25);
  return x.to(dt).contiguous();
}

std::string dtype_label(at::ScalarType dt) { return dt == at::kFloat ? "float32" : "float64"; }

/// x / w element by element in the tensor's own floating type (what kMean does after the exact sum).
at::Tensor divided(const at::Tensor& t, int w) {
  at::Tensor out = t.clone();
  if (out.scalar_type() == at::kFloat) {
    float* p = out.data_ptr<float>();
    for (int64_t k = 0; k < out.numel(); ++k) p[k] = p[k] / float(w);
  } else {
    double* p = out.data_ptr<double>();
    for (int64_t k = 0; k < out.numel(); ++k) p[k] = p[k] / double(w);
  }
  return out;
}

class AllreduceDtype : public ::testing::TestWithParam<std::tuple<at::ScalarType, int64_t>> {};

TEST_P(AllreduceDtype, SumMeanMaxMatchClosedForms) {
  const auto [dt, n] = GetParam();
  const double tri = W() * (W() + 1) / 2.0;  // sum over ranks of (r + 1)
  const double quarter = dt == at::kLong ? 0 : 0.25;
  // sum: i * W(W+1)/2 + 0.25 W
  at::Tensor s = ramp(n, dt, R());
  comm().allreduce(s, ReduceOp::kSum);
  at::Tensor i = torch::arange(n, torch::kDouble).remainder(1000);
  at::Tensor want_sum = (i * tri + quarter * W()).to(dt);
  EXPECT_TRUE(torch::equal(s, want_sum)) << "sum, n=" << n;
  // mean: the exact sum divided by W in the tensor's type (int64 truncates toward zero); negative int64 values check
  // the truncation.
  at::Tensor m = dt == at::kLong ? (-ramp(n, dt, R())).contiguous() : ramp(n, dt, R());
  comm().allreduce(m, ReduceOp::kMean);
  at::Tensor want_mean = dt == at::kLong ? torch::div(-(i * tri).to(at::kLong), W(), "trunc") : divided(want_sum, W());
  EXPECT_TRUE(torch::equal(m, want_mean)) << "mean, n=" << n;
  // max: rank r holds r * 1000 + i on even i and -r on odd i; max = (W - 1) * 1000 + i and 0.
  at::Tensor idx = torch::arange(n, torch::kLong);
  at::Tensor even = idx.remainder(2).eq(0);
  at::Tensor x = torch::where(even, idx + R() * 1000, torch::full_like(idx, -R())).to(dt).contiguous();
  comm().allreduce(x, ReduceOp::kMax);
  at::Tensor want_max = torch::where(even, idx + (W() - 1) * 1000, torch::zeros_like(idx)).to(dt);
  EXPECT_TRUE(torch::equal(x, want_max)) << "max, n=" << n;
}

INSTANTIATE_TEST_SUITE_P(DtypesAndSizes, AllreduceDtype,
                         ::testing::Combine(::testing::Values(at::kFloat, at::kDouble, at::kLong),
                                            ::testing::Values(int64_t(0), int64_t(1), int64_t(2), int64_t(1000),
                                                              int64_t(100003))));

TEST(Communicator, AllreduceOf2dTensorAndValuesHelpers) {
  at::Tensor t = torch::full({3, 4}, double(R() + 1), torch::kDouble);
  comm().allreduce(t);
  EXPECT_TRUE(torch::equal(t, torch::full({3, 4}, W() * (W() + 1) / 2.0, torch::kDouble)));
  std::vector<double> v{1.0, double(R())};
  comm().allreduce_values(v, ReduceOp::kSum);
  EXPECT_EQ(v, (std::vector<double>{double(W()), W() * (W() - 1) / 2.0}));
  EXPECT_EQ(comm().allreduce_value(double(R()), ReduceOp::kMax), double(W() - 1));
}

TEST(Communicator, FloatSumsAreBitwiseIdenticalAcrossRanksAndEqualTheRankOrderSum) {
  // Random float32 in [-1, 1) from a per-rank seed: a float sum depends on the order of the additions. Every rank must
  // hold the same bits, and they must be those of ((x_0 + x_1) + x_2) + ... in float32 (the communicator's fixed
  // order), which each rank recomputes from every rank's regenerated input; blocking and async agree bit for bit.
  const int64_t n = 100003;
  for (at::ScalarType dt : {at::kFloat, at::kDouble}) {
    auto input = [n, dt](int r) {
      std::mt19937_64 rng(1234 + r);
      std::uniform_real_distribution<double> u(-1.0, 1.0);
      at::Tensor t = torch::empty({n}, torch::kDouble);
      double* p = t.data_ptr<double>();
      for (int64_t i = 0; i < n; ++i) p[i] = u(rng);
      return t.to(dt);
    };
    at::Tensor ref = input(0);
    for (int r = 1; r < W(); ++r) ref += input(r);  // elementwise, in dt: the same order
    at::Tensor ref64 = torch::zeros({n}, torch::kDouble);
    for (int r = 0; r < W(); ++r) ref64 += input(r).to(torch::kDouble);
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMean}) {
      const at::Tensor want = op == ReduceOp::kMean ? divided(ref, W()) : ref;
      at::Tensor t = input(R());
      comm().allreduce(t, op);
      EXPECT_TRUE(torch::equal(t, want)) << "not the rank-order sum, " << dtype_label(dt);
      const at::Tensor want64 = op == ReduceOp::kMean ? ref64 / W() : ref64;
      EXPECT_LT((t.to(torch::kDouble) - want64).abs().max().item<double>(), 1e-5 * W()) << "not even close";
      const auto sums = checksums(t);
      for (int r = 1; r < W(); ++r) EXPECT_EQ(sums[size_t(r)], sums[0]) << "rank " << r << " differs from rank 0";
      at::Tensor a = input(R());
      comm().allreduce_async(a, op)->wait();
      EXPECT_EQ(checksum(a), checksum(t)) << "async differs from blocking, " << dtype_label(dt);
    }
  }
}

// ---- async ----

TEST(Communicator, AsyncAllreducesInFlightCompleteOutOfOrder) {
  const double tri = W() * (W() + 1) / 2.0;
  at::Tensor a = torch::full({5000}, double(R() + 1), torch::kFloat);
  at::Tensor b = torch::full({7}, double(R() + 1), torch::kDouble);
  at::Tensor c = torch::full({300}, int64_t(R() + 1), torch::kLong);
  at::Tensor d = torch::full({64}, double(R()), torch::kDouble);
  auto wa = comm().allreduce_async(a, ReduceOp::kSum);
  auto wb = comm().allreduce_async(b, ReduceOp::kMean);
  auto wc = comm().allreduce_async(c, ReduceOp::kSum);
  auto wd = comm().allreduce_async(d, ReduceOp::kMax);
  // A blocking collective while four are in flight.
  at::Tensor e = torch::full({3}, 1.0, torch::kDouble);
  comm().allreduce(e);
  EXPECT_TRUE(torch::equal(e, torch::full({3}, double(W()), torch::kDouble)));
  // Complete in reverse order; poll one with test() until it reports done.
  wd->wait();
  EXPECT_TRUE(torch::equal(d, torch::full({64}, double(W() - 1), torch::kDouble)));
  const auto t0 = std::chrono::steady_clock::now();
  while (!wc->test()) {
    ASSERT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30)) << "test() never reported completion";
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  EXPECT_TRUE(wc->test());  // stays done
  EXPECT_TRUE(torch::equal(c, torch::full({300}, int64_t(tri), torch::kLong)));
  wb->wait();
  EXPECT_TRUE(torch::equal(b, torch::full({7}, tri / W(), torch::kDouble)));
  wa->wait();
  wa->wait();  // idempotent
  EXPECT_TRUE(torch::equal(a, torch::full({5000}, tri, torch::kFloat)));
}

// Many float all-reduces in flight at once (two stages each under MPI), polled and waited in a different order and
// with different delays on every rank, so their first stages complete in different orders on different ranks: every
// sum is still exact, and a blocking collective in between is not confused with them.
TEST(Communicator, ManyLargeAsyncAllreducesPolledInRankDependentOrder) {
  constexpr int kWorks = 8;
  std::vector<at::Tensor> t;
  std::vector<std::unique_ptr<dist::Work>> w;
  for (int k = 0; k < kWorks; ++k) {
    t.push_back(torch::full({(k + 1) * 40000}, double(R() + 1 + k), torch::kFloat));
    w.push_back(comm().allreduce_async(t.back(), ReduceOp::kSum));
    if (R() == k % W()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::mt19937_64 gen(uint64_t(R()) * 7919 + 1);
  for (int round = 0; round < 50; ++round) {
    const int k = int(gen() % kWorks);
    w[size_t(k)]->test();
    if (round == 25) {
      at::Tensor e = torch::full({3}, 1.0, torch::kDouble);
      comm().allreduce(e);
      EXPECT_TRUE(torch::equal(e, torch::full({3}, double(W()), torch::kDouble)));
    }
  }
  for (int i = 0; i < kWorks; ++i) {
    const int k = (R() % 2 == 0) ? kWorks - 1 - i : i;  // even ranks wait from the last, odd ranks from the first
    w[size_t(k)]->wait();
  }
  const double tri = W() * (W() + 1) / 2.0;
  for (int k = 0; k < kWorks; ++k)
    EXPECT_TRUE(torch::equal(t[size_t(k)], torch::full({(k + 1) * 40000}, tri + double(W() * k), torch::kFloat))) << k;
}

TEST(Communicator, AsyncWorkDestroyedUnwaitedStillCompletes) {
  at::Tensor t = torch::full({100}, 2.0, torch::kDouble);
  { auto w = comm().allreduce_async(t); }  // the destructor finishes the collective
  EXPECT_TRUE(torch::equal(t, torch::full({100}, 2.0 * W(), torch::kDouble)));
}

// ---- broadcast, barrier, allgather ----

TEST(Communicator, BroadcastFromRoot1CopiesRoot1sTensor) {
  const int root = W() > 1 ? 1 : 0;
  at::Tensor f = (torch::arange(12, torch::kFloat).reshape({3, 4}) + 100 * R()).contiguous();
  comm().broadcast(f, root);
  EXPECT_TRUE(torch::equal(f, torch::arange(12, torch::kFloat).reshape({3, 4}) + 100 * root));
  at::Tensor l = torch::full({1001}, int64_t(R() * 7 - 3), torch::kLong);
  comm().broadcast(l, root);
  EXPECT_TRUE(torch::equal(l, torch::full({1001}, int64_t(root * 7 - 3), torch::kLong)));
  at::Tensor i32 = torch::full({5}, R() + 40, torch::kInt);  // broadcast moves bytes: any dtype
  comm().broadcast(i32, 0);
  EXPECT_TRUE(torch::equal(i32, torch::full({5}, 40, torch::kInt)));
}

TEST(Communicator, BarrierWaitsForTheLastRank) {
  // Rank 0 arrives 300 ms late: every other rank must spend (nearly) that long in the barrier.
  if (R() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = std::chrono::steady_clock::now();
  comm().barrier();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (R() != 0) {
    EXPECT_GT(waited, 0.2) << "the barrier returned before rank 0 arrived";
  }
}

TEST(Communicator, AllgatherWithDifferentLengthsPerRank) {
  // Rank r gives r values (rank 0 none): 10 r + k for k < r.
  std::vector<double> mine;
  for (int k = 0; k < R(); ++k) mine.push_back(10.0 * R() + k);
  const auto all = comm().allgather(mine);
  ASSERT_EQ(int(all.size()), W());
  for (int r = 0; r < W(); ++r) {
    ASSERT_EQ(int(all[size_t(r)].size()), r) << "rank " << r << "'s values";
    for (int k = 0; k < r; ++k) EXPECT_EQ(all[size_t(r)][size_t(k)], 10.0 * r + k);
  }
}

TEST(Communicator, SequenceCountsCollectivesAndAgreesAcrossRanks) {
  const int64_t s0 = comm().sequence();
  at::Tensor t = torch::ones({4}, torch::kFloat);
  comm().barrier();
  comm().allreduce(t);
  comm().broadcast(t, 0);
  comm().allgather({1.0});
  comm().allreduce_async(t)->wait();
  EXPECT_EQ(comm().sequence(), s0 + 5);
  const auto seqs = comm().allgather({double(comm().sequence())});  // itself #s0 + 6
  for (int r = 0; r < W(); ++r) EXPECT_EQ(seqs[size_t(r)][0], double(s0 + 5)) << "rank " << r;
  EXPECT_EQ(comm().sequence(), s0 + 6);
}

// ---- local checks (no collective is issued, so they may fail on one rank only) ----

TEST(Communicator, RejectsTensorsItCannotReduceNamingRankAndFix) {
  at::Tensor nc = torch::ones({4, 4}, torch::kFloat).t();
  const int64_t s0 = comm().sequence();
  const std::string a = message_of([&] { comm().allreduce(nc); });
  EXPECT_NE(a.find("rank " + std::to_string(R())), std::string::npos) << a;
  EXPECT_NE(a.find("not contiguous"), std::string::npos) << a;
  EXPECT_NE(a.find("t.contiguous()"), std::string::npos) << a;
  at::Tensor i32 = torch::ones({4}, torch::kInt);
  const std::string b = message_of([&] { comm().allreduce(i32); });
  EXPECT_NE(b.find("float32, float64 and int64"), std::string::npos) << b;
  EXPECT_NE(b.find("allreduce of 4 x Int (sum)"), std::string::npos) << b;
  at::Tensor f = torch::ones({4}, torch::kFloat);
  const std::string c = message_of([&] { comm().broadcast(f, W()); });
  EXPECT_NE(c.find("root " + std::to_string(W()) + " is not a rank"), std::string::npos) << c;
  EXPECT_EQ(comm().sequence(), s0) << "a rejected collective must not consume a sequence number";
}

// ---- debug mode ----

TEST(Communicator, DebugModeCatchesMismatchesOnEveryRankAndStaysUsable) {
  if (W() < 2) GTEST_SKIP() << "needs 2 ranks";
  dist::CommOptions o;
  o.backend = "mpi";
  o.debug = true;
  o.timeout_s = 60;
  auto dbg = dist::make_communicator(o);
  ASSERT_EQ(dbg->sequence(), 0);
  at::Tensor ok = torch::full({8}, 1.0, torch::kDouble);
  dbg->allreduce(ok);  // #1 matches
  EXPECT_TRUE(torch::equal(ok, torch::full({8}, double(W()), torch::kDouble)));

  // #2: rank 1 all-reduces 128 floats, every other rank 256. Every rank throws; nothing is reduced.
  const int64_t n = R() == 1 ? 128 : 256;
  at::Tensor t = torch::full({n}, 5.0, torch::kFloat);
  const std::string m = message_of([&] { dbg->allreduce(t); });
  EXPECT_NE(m.find("rank " + std::to_string(R()) + ": debug check"), std::string::npos) << m;
  EXPECT_NE(m.find("collective #2 differs between ranks"), std::string::npos) << m;
  std::string others = W() == 2 ? "rank 0" : "ranks 0";
  for (int r = 2; r < W(); ++r) others += ", " + std::to_string(r);
  others += " issued allreduce of 256 x float32 (sum)";
  EXPECT_NE(m.find(others), std::string::npos) << m;
  EXPECT_NE(m.find("rank 1 issued allreduce of 128 x float32 (sum)"), std::string::npos) << m;
  EXPECT_NE(m.find("was not run"), std::string::npos) << m;
  EXPECT_TRUE(torch::equal(t, torch::full({n}, 5.0, torch::kFloat))) << "the mismatched all-reduce ran";

  // #3: a following collective works.
  at::Tensor after = torch::full({3}, double(R()), torch::kDouble);
  dbg->allreduce(after, ReduceOp::kMax);
  EXPECT_TRUE(torch::equal(after, torch::full({3}, double(W() - 1), torch::kDouble)));

  // #4: rank 1 issues a barrier where rank 0 issues an all-reduce.
  at::Tensor x = torch::ones({16, 16}, torch::kFloat);
  const std::string m2 = message_of([&] {
    if (R() == 1)
      dbg->barrier();
    else
      dbg->allreduce(x);
  });
  EXPECT_NE(m2.find("collective #4 differs"), std::string::npos) << m2;
  EXPECT_NE(m2.find("issued allreduce of 256 x float32 [16, 16] (sum)"), std::string::npos) << m2;
  EXPECT_NE(m2.find("rank 1 issued barrier"), std::string::npos) << m2;

  // #5: a broadcast whose root differs on rank 1.
  at::Tensor y = torch::zeros({2}, torch::kLong);
  const std::string m3 = message_of([&] { dbg->broadcast(y, R() == 1 ? 1 : 0); });
  EXPECT_NE(m3.find("rank 1 issued broadcast of 2 x int64 from rank 1"), std::string::npos) << m3;

  // #6, #7: still consistent; allgather lengths may differ by design (not a mismatch).
  const auto g = dbg->allgather(std::vector<double>(size_t(R()), 1.0));
  EXPECT_EQ(int(g.size()), W());
  dbg->barrier();
  EXPECT_EQ(dbg->sequence(), 7);
}

// ---- config and backend choice (local: no collective) ----

TEST(CommOptions, ReadsAndValidatesTheDistSection) {
  const auto o = dist::CommOptions::from(Config::from_string(
      "dist:\n  backend: mpi\n  timeout_s: 42\n  startup_timeout_s: 7\n  debug: true\n", "dist.yaml"));
  EXPECT_EQ(o.backend, "mpi");
  EXPECT_EQ(o.timeout_s, 42);
  EXPECT_EQ(o.startup_timeout_s, 7);
  EXPECT_TRUE(o.debug);
  const auto d = dist::CommOptions::from(Config::from_string("{}"));
  EXPECT_EQ(d.backend, "auto");
  EXPECT_EQ(d.timeout_s, 300);
  EXPECT_EQ(d.startup_timeout_s, 60);
  EXPECT_FALSE(d.debug);
  auto error_of = [](const std::string& yaml) {
    try {
      dist::CommOptions::from(Config::from_string(yaml));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no ConfigError)");
  };
  EXPECT_NE(error_of("dist: {backend: gloo}").find("dist.backend is 'gloo'; use auto"), std::string::npos);
  EXPECT_NE(error_of("dist: {timeout_s: 0.5}").find("dist.timeout_s is 0.5; give 1..1e6"), std::string::npos);
  EXPECT_NE(error_of("dist: {startup_timeout_s: -1}").find("dist.startup_timeout_s is -1"), std::string::npos);
  EXPECT_NE(error_of("dist: {debug: maybe}").find("'dist.debug'"), std::string::npos);
}

TEST(CommOptions, BackendChoiceFollowsTheLauncher) {
  EXPECT_EQ(dist::launched_multi_process(), W() > 1);
  EXPECT_EQ(comm().name(), "mpi");
  dist::CommOptions local;
  local.backend = "local";
  if (W() > 1) {
    const std::string m = message_of([&] { dist::make_communicator(local); });
    EXPECT_NE(m.find("one of " + std::to_string(W()) + " ranks (OMPI_COMM_WORLD_SIZE=" + std::to_string(W())),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("its own copy of the model"), std::string::npos) << m;
  } else {
    EXPECT_EQ(dist::make_communicator(local)->name(), "local");
  }
  dist::CommOptions mpi_on_cuda;
  mpi_on_cuda.backend = "mpi";
  try {
    dist::make_communicator(mpi_on_cuda, "cuda");
    ADD_FAILURE() << "mpi on cuda accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("dist.backend=nccl"), std::string::npos) << e.what();
  }
#if !DFCL_HAVE_NCCL
  dist::CommOptions nccl;
  nccl.backend = "nccl";
  try {
    dist::make_communicator(nccl, "cuda");
    ADD_FAILURE() << "nccl accepted without NCCL";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("-DDFCL_CUDA=ON"), std::string::npos) << e.what();
  }
#endif
}

TEST(CommOptions, LaunchedMultiProcessReadsTheLaunchersVariables) {
  // Saved and restored: the variables of this very launch.
  const char* names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE",  "SLURM_STEP_NUM_TASKS",
                         "SLURM_PROCID",         "PMIX_RANK", "SLURM_NTASKS"};
  std::vector<std::pair<std::string, std::string>> saved;
  for (const char* n : names)
    if (const char* v = std::getenv(n)) saved.push_back({n, v});
  for (const char* n : names) unsetenv(n);
  EXPECT_FALSE(dist::launched_multi_process());
  setenv("SLURM_NTASKS", "4", 1);  // a batch script's own environment: one process
  EXPECT_FALSE(dist::launched_multi_process());
  setenv("PMIX_RANK", "0", 1);  // srun --mpi=pmix
  EXPECT_TRUE(dist::launched_multi_process());
  unsetenv("PMIX_RANK");
  setenv("SLURM_STEP_NUM_TASKS", "2", 1);
  setenv("SLURM_PROCID", "1", 1);  // srun without an MPI plugin
  EXPECT_TRUE(dist::launched_multi_process());
  for (const char* n : names) unsetenv(n);
  setenv("PMI_SIZE", "1", 1);
  EXPECT_FALSE(dist::launched_multi_process());
  setenv("PMI_SIZE", "3", 1);
  EXPECT_TRUE(dist::launched_multi_process());
  for (const char* n : names) unsetenv(n);
  for (const auto& [n, v] : saved) setenv(n.c_str(), v.c_str(), 1);
  EXPECT_EQ(dist::launched_multi_process(), W() > 1);
}

/// Rank > 0: only failures, each line prefixed with the rank, and one summary line.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed())
      std::printf("[rank %d] %s:%d: Failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?", r.line_number(),
                  r.summary());
  }
  void OnTestEnd(const ::testing::TestInfo& t) override {
    if (t.result()->Failed()) std::printf("[rank %d] [  FAILED  ] %s.%s\n", rank_, t.test_suite_name(), t.name());
  }
  void OnTestProgramEnd(const ::testing::UnitTest& u) override {
    std::printf("[rank %d] %d tests ran, %d failed\n", rank_, u.test_to_run_count(), u.failed_test_count());
    std::fflush(stdout);
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  dist::CommOptions o;
  o.backend = "mpi";
  o.timeout_s = 60;  // a test that desynchronises the ranks ends the job within a minute, naming the collective
  g_comm = dist::make_communicator(o);
  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (g_comm->rank() != 0) {
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(g_comm->rank()));
  }
  const int failed = RUN_ALL_TESTS() != 0;
  const double ranks_failed = g_comm->allreduce_value(failed);
  if (g_comm->rank() == 0) std::printf("[dfcl_test_comm] %d rank(s): %g with failures\n", g_comm->size(), ranks_failed);
  g_comm.reset();
  return ranks_failed > 0 ? 1 : 0;
}
