// \brief Evaluation on the device against the CPU path: DeviceIpwPath's IPW value at many λ (every breakpoint and
// between them) equals metrics::IpwPath::at, its λ bound equals the CPU's, and EOM through metrics::eom_bisect with
// either path finds the same λ*, revenue and spend. Random scores with ties (integer-valued rows) and arms off the
// hull. Built whenever CUDA is; skipped at run time when no GPU is usable.
#include <gtest/gtest.h>  // for TEST

#include <algorithm>  // for std::max
#include <cmath>      // for std::abs, std::isfinite, std::nextafter
#include <string>     // for std::string
#include <vector>     // for std::vector

#include "core/rng.h"            // for Rng
#include "cuda/device_buffer.h"  // for Dev, gpu
#include "cuda/eval_kernels.h"   // for DeviceIpwPath
#include "metrics/eom.h"         // for eom_bisect, EomOptions
#include "metrics/ipw_path.h"    // for IpwPath
#include "metrics/rct_sample.h"  // for make_sample

using namespace dfcl;
using cuda_test::Dev;
using cuda_test::gpu;

TEST(CudaEvalKernels, DeviceIpwPathMatchesIpwPathAndEom) {
  std::string why;
  if (!gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  for (bool integers : {false, true}) {
    SCOPED_TRACE(integers ? "integer scores (ties)" : "real scores");
    const int64_t n = 100003;
    const int m = 4;
    std::vector<float> r(size_t(n) * m), c(size_t(n) * m), rev(static_cast<size_t>(n)), cost(static_cast<size_t>(n));
    std::vector<int32_t> arm(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      Rng g(12, 1, uint64_t(i));
      for (int j = 0; j < m; ++j) {
        r[size_t(i) * m + j] = integers ? float(int(g.uniform() * 5)) : float(g.normal() + j);
        c[size_t(i) * m + j] = integers ? float(int(g.uniform() * 3) * (j > 0)) : float(j * g.uniform());
      }
      arm[size_t(i)] = int32_t(g.uniform() * m) % m;
      rev[size_t(i)] = float(g.uniform() * 4);
      cost[size_t(i)] = arm[size_t(i)] ? float(g.uniform() * 2) : 0.0f;
    }
    const metrics::RctSample s = metrics::make_sample(arm, rev, cost, m, {0.25, 0.25, 0.25, 0.25});
    const metrics::IpwPath cpu(solver::Scores{n, m, r.data(), c.data()}, s, 2);
    Dev<float> rd(r), cd(c), revd(rev), costd(cost);
    Dev<int32_t> armd(arm);
    std::vector<double> inv_p(m);
    for (int j = 0; j < m; ++j) inv_p[size_t(j)] = 1.0 / s.propensity[size_t(j)];
    cuda::DeviceIpwPath dev(rd.p, cd.p, n, m, armd.p, revd.p, costd.p, inv_p, double(n));
    ASSERT_TRUE(dev.ok()) << dev.error();
    EXPECT_EQ(dev.events(), cpu.events());
    EXPECT_EQ(dev.bound_hi(), cpu.bound().hi);
    EXPECT_EQ(dev.bound_spec(), cpu.bound().spec);
    // The value at λ on a grid, and just around a sample of breakpoints.
    std::vector<double> lambdas;
    for (int k = 0; k <= 200; ++k) lambdas.push_back(cpu.bound().hi * k / 200.0);
    int swept = 0;
    cpu.sweep([&](double lam, const metrics::PolicyValue&) {
      if (std::isfinite(lam) && (swept++ % 997) == 0) lambdas.push_back(lam), lambdas.push_back(std::nextafter(lam, 0.0));
    });
    for (double lam : lambdas) {
      double vr = 0, vc = 0;
      ASSERT_TRUE(dev.at(lam, &vr, &vc)) << dev.error();
      const metrics::PolicyValue want = cpu.at(lam);
      ASSERT_NEAR(vr, want.revenue, 1e-9 * std::max(1.0, std::abs(want.revenue))) << "λ " << lam;
      ASSERT_NEAR(vc, want.cost, 1e-9 * std::max(1.0, std::abs(want.cost))) << "λ " << lam;
    }
    // EOM through the CPU's driver with either path.
    const double full = cpu.at(0).cost;
    for (double frac : {0.2, 0.5, 0.8}) {
      const auto on_dev = [&](double lam) {
        metrics::PolicyValue v;
        dev.at(lam, &v.revenue, &v.cost);
        return v;
      };
      const metrics::EomPoint a = metrics::eom_bisect(frac * full, dev.bound_hi(), {}, on_dev);
      const metrics::EomPoint b = metrics::eom_bisect(frac * full, cpu.bound().hi, {}, [&](double l) { return cpu.at(l); });
      EXPECT_EQ(a.matched, b.matched) << "budget x" << frac;
      EXPECT_EQ(a.stepped, b.stepped) << "budget x" << frac;
      EXPECT_NEAR(a.lambda, b.lambda, 1e-12 * std::max(1.0, b.lambda)) << "budget x" << frac;
      EXPECT_NEAR(a.revenue, b.revenue, 1e-9 * std::max(1.0, b.revenue)) << "budget x" << frac;
    }
  }
}
