// \brief GPU kernels against the CPU path: the same row functions must give the same hulls and policies.
// Built whenever CUDA is (a compile-and-link check without a GPU); skipped at run time when no GPU is usable.
#include <gtest/gtest.h>  // for TEST

#include <chrono>  // for steady_clock

#include "core/rng.h"              // for Rng
#include "cuda/solver_kernels.h"   // for row_hulls, dual_policy
#include "solver/hull.h"           // for row_hull, row_policy

using namespace dfcl;

namespace {
void instance(int64_t n, int m, bool integers, std::vector<float>& r, std::vector<float>& c) {
  r.resize(n * m), c.resize(n * m);
  for (int64_t i = 0; i < n; ++i) {
    Rng g(9, 1, uint64_t(i));
    for (int j = 0; j < m; ++j) {
      r[i * m + j] = integers ? float(int(g.uniform() * 6) - 1) : float(g.normal());
      c[i * m + j] = integers ? float(int(g.uniform() * 4)) : float(j * (0.5 + g.uniform()));
    }
  }
}
}  // namespace

TEST(CudaSolverKernels, HullsAndPoliciesMatchTheCpuPath) {
  for (int m : {2, 5, 9}) {
    for (bool integers : {false, true}) {
      const int64_t n = 200003;
      std::vector<float> r, c;
      instance(n, m, integers, r, c);
      std::vector<uint8_t> hull(n * m), size(n), arm(n);
      std::string why;
      if (!cuda::row_hulls(r.data(), c.data(), n, m, hull.data(), size.data(), &why)) GTEST_SKIP() << "no GPU: " << why;
      ASSERT_TRUE(cuda::dual_policy(r.data(), c.data(), n, m, 0.7, arm.data(), &why)) << why;
      uint8_t h[64];
      for (int64_t i = 0; i < n; ++i) {
        int hs = solver::row_hull(&r[i * m], &c[i * m], m, h);
        ASSERT_EQ(size[i], hs) << "user " << i;
        for (int k = 0; k < hs; ++k) ASSERT_EQ(hull[i * m + k], h[k]) << "user " << i;
        ASSERT_EQ(arm[i], solver::row_policy(&r[i * m], &c[i * m], m, 0.7)) << "user " << i;
      }
    }
  }
}

TEST(CudaSolverKernels, TimingAtTenMillionUsers) {
  // A measurement, not a check (docs/benchmarks.md): kernel time for 10M x 5 hulls against one CPU core.
  std::string why;
  float probe_r[2] = {0, 1}, probe_c[2] = {0, 1};
  uint8_t probe_h[2], probe_s[1];
  if (!cuda::row_hulls(probe_r, probe_c, 1, 2, probe_h, probe_s, &why)) GTEST_SKIP() << "no GPU: " << why;
  const int64_t n = 10000000;
  const int m = 5;
  std::vector<float> r, c;
  instance(n, m, false, r, c);
  std::vector<uint8_t> hull(n * m), size(n);
  float ms = 0;
  if (!cuda::row_hulls(r.data(), c.data(), n, m, hull.data(), size.data(), &why, &ms)) GTEST_SKIP() << "no GPU: " << why;
  auto t0 = std::chrono::steady_clock::now();
  uint8_t h[8];
  int64_t total = 0;
  for (int64_t i = 0; i < n; ++i) total += solver::row_hull(&r[i * m], &c[i * m], m, h);
  double cpu_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  int64_t gpu_total = 0;
  for (int64_t i = 0; i < n; ++i) gpu_total += size[i];
  EXPECT_EQ(gpu_total, total);
  std::printf("row_hull 10M x 5: GPU kernel %.2f ms, one CPU core %.1f ms (%.0fx)\n", ms, cpu_ms, cpu_ms / ms);
}
