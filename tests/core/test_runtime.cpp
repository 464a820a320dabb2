// \brief Runtime pieces: thread configuration, counter-based RNG, parallel_for.
#include <ATen/Parallel.h>  // for at::get_num_threads
#include <gtest/gtest.h>    // for TEST

#include <cmath>    // for std::sqrt
#include <cstdlib>  // for setenv
#include <filesystem>  // for std::filesystem
#include <set>      // for std::set

#include "core/atomic_file.h"  // for AtomicFile
#include "core/error.h"        // for IoError
#include "core/parallel.h"  // for parallel_for
#include "core/rng.h"       // for Rng, mix64
#include "core/threads.h"   // for configure_torch_threads

TEST(Threads, ConfigOverridesEnvironment) {
  setenv("OMP_NUM_THREADS", "3", 1);
  EXPECT_EQ(dfcl::resolve_threads(0), 3);
  EXPECT_EQ(dfcl::configure_torch_threads(2), 2);
  EXPECT_EQ(at::get_num_threads(), 2);
  EXPECT_EQ(dfcl::configure_torch_threads(0), 3);
  EXPECT_EQ(at::get_num_threads(), 3);
  unsetenv("OMP_NUM_THREADS");
  EXPECT_GE(dfcl::resolve_threads(0), 1);
}

TEST(Rng, SameCounterSameDraws) {
  dfcl::Rng a(7, 2, 123), b(7, 2, 123), c(7, 2, 124);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.next(), b.next());
  EXPECT_NE(dfcl::Rng(7, 2, 123).next(), c.next());
}

TEST(Rng, MomentsMatchTheDistributions) {
  // n = 1e6 draws: the sample mean of U(0,1) has sd 0.00029, of N(0,1) 0.001; tolerances are 5 sd.
  dfcl::Rng r(1, 1);
  const int n = 1000000;
  double su = 0, sn = 0, sn2 = 0, sn4 = 0;
  for (int i = 0; i < n; ++i) {
    su += r.uniform();
    double z = r.normal();
    sn += z, sn2 += z * z, sn4 += z * z * z * z;
  }
  EXPECT_NEAR(su / n, 0.5, 5 * 0.00029);
  EXPECT_NEAR(sn / n, 0.0, 5 * 0.001);
  EXPECT_NEAR(sn2 / n, 1.0, 5 * std::sqrt(2.0 / n));
  EXPECT_NEAR(sn4 / n, 3.0, 5 * std::sqrt(96.0 / n));  // Var(z^4) = 105 - 9 = 96
}

TEST(Rng, Mix64IsABijectionOnASample) {
  std::set<uint64_t> seen;
  for (uint64_t i = 0; i < 100000; ++i) seen.insert(dfcl::mix64(i));
  EXPECT_EQ(seen.size(), 100000u);
}

TEST(ParallelFor, CoversEveryIndexOnceAndRethrows) {
  std::vector<int> hits(1000, 0);
  dfcl::parallel_for(1000, 4, [&](int64_t i) { hits[i] += 1; });
  for (int h : hits) EXPECT_EQ(h, 1);
  EXPECT_THROW(dfcl::parallel_for(100, 3, [](int64_t i) {
                 if (i == 37) throw std::runtime_error("boom");
               }),
               std::runtime_error);
}

// AtomicFile: nothing at the path until commit(); an uncommitted file leaves nothing; a directory in the way is an
// IoError that says so (issue 14, items 8 and 9).
TEST(AtomicFile, AppearsWholeOrNotAtAll) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / "dfcl_atomic";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "out.csv").string();
  {
    dfcl::AtomicFile f(path, "test output");
    f.stream() << "a,b\n1,2\n";
    EXPECT_FALSE(fs::exists(path));
    EXPECT_TRUE(fs::exists(path + ".partial"));
    f.commit();
  }
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".partial"));
  EXPECT_EQ(fs::file_size(path), 8u);
  { dfcl::AtomicFile f((dir / "dropped.csv").string(), "test output"); f.stream() << "half"; }  // an exception's path
  EXPECT_FALSE(fs::exists(dir / "dropped.csv"));
  EXPECT_FALSE(fs::exists(dir / "dropped.csv.partial"));
  fs::create_directories(dir / "taken" / "x");
  dfcl::AtomicFile f((dir / "taken").string(), "test output");
  f.stream() << "x";
  try {
    f.commit();
    FAIL() << "renamed over a directory";
  } catch (const dfcl::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("a directory of that name is in the way"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "taken.partial"));
}
