// \brief Bi-DFCL's device kernels against the CPU path (the same cell and element functions run on the host): the lower
// level's masked MSE and gate cotangent (both label modes, padding rows), and the CG vector update. Built whenever CUDA
// is; skipped at run time when no GPU is usable.
#include <gtest/gtest.h>  // for TEST

#include <algorithm>  // for std::max
#include <cmath>      // for std::abs
#include <string>     // for std::string
#include <vector>     // for std::vector

#include "bilevel/cg_rows.h"     // for rows::cg_update, rows::cg_direction
#include "bilevel/lower_rows.h"  // for rows::lower_cell, rows::gate_cotangent_cell
#include "core/rng.h"            // for Rng
#include "cuda/cg_kernels.h"     // for cg_update, cg_direction
#include "cuda/device_buffer.h"  // for Dev, gpu
#include "cuda/lower_kernels.h"  // for lower_value_and_grad, gate_cotangent

using namespace dfcl;
using cuda_test::Dev;
using cuda_test::gpu;

namespace {
double rel(double a, double b) { return std::abs(a - b) / std::max(1.0, std::abs(b)); }
}  // namespace

TEST(CudaLowerKernels, MaskedMseAndGateCotangentMatchTheCpuCells) {
  std::string why;
  if (!gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  const int64_t n = 50021;
  const int m = 4, m2 = 8;
  std::vector<double> yhat(size_t(n) * m2), y(yhat.size()), omega(yhat.size()), factual(yhat.size()), u(yhat.size()),
      teacher(yhat.size()), snapshot(yhat.size()), weight(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    Rng g(6, 1, uint64_t(i));
    const int t = int(g.uniform() * m) % m;
    weight[size_t(i)] = i >= n - 5 ? 0.0 : 1.0;  // padding rows
    for (int j = 0; j < m2; ++j) {
      const size_t c = size_t(i) * m2 + j;
      yhat[c] = g.normal(), y[c] = g.normal(), u[c] = g.normal(), teacher[c] = g.normal(), snapshot[c] = g.normal();
      factual[c] = (j % m) == t ? 1.0 : 0.0;
      omega[c] = weight[size_t(i)] * (1 + g.uniform());
    }
  }
  const double kappa = 1.0 / (double(n) * m);
  Dev<double> dy(yhat), dyy(y), dom(omega), df(factual), du(u), dte(teacher), dsn(snapshot), dw(weight);
  Dev<double> ddr(std::vector<double>(size_t(n) * m)), ddc(std::vector<double>(size_t(n) * m)),
      dq(std::vector<double>(yhat.size())), dv(std::vector<double>{0.0});
  ASSERT_TRUE(cuda::lower_value_and_grad<double>(dy.p, dyy.p, dom.p, n, m, kappa, ddr.p, ddc.p, dv.p, nullptr, &why))
      << why;
  std::vector<double> dr(size_t(n) * m), dc(size_t(n) * m);
  double v = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < m2; ++j) {
      const size_t c = size_t(i) * m2 + j;
      v += bilevel::rows::lower_cell<double>(yhat[c], y[c], omega[c], kappa,
                                             j < m ? dr[size_t(i) * m + j] : dc[size_t(i) * m + j - m]);
    }
  EXPECT_LT(rel(dv.get()[0], v), 1e-12);
  const std::vector<double> gr = ddr.get(), gc = ddc.get();
  for (size_t k = 0; k < gr.size(); ++k) {
    ASSERT_LT(rel(gr[k], dr[k]), 1e-15) << k;
    ASSERT_LT(rel(gc[k], dc[k]), 1e-15) << k;
  }
  for (bool cf : {true, false}) {
    ASSERT_TRUE(cuda::gate_cotangent<double>(cf, dy.p, dyy.p, dom.p, df.p, dw.p, du.p, dte.p, dsn.p, n, m, kappa, dq.p,
                                             nullptr, &why))
        << why;
    const std::vector<double> q = dq.get();
    for (int64_t i = 0; i < n; ++i)
      for (int j = 0; j < m2; ++j) {
        const size_t c = size_t(i) * m2 + j;
        const double want = bilevel::rows::gate_cotangent_cell<double>(cf, factual[c] != 0, yhat[c], y[c], omega[c],
                                                                       weight[size_t(i)], u[c], teacher[c],
                                                                       snapshot[c], kappa);
        ASSERT_LT(rel(q[c], want), 1e-15) << (cf ? "counterfactual" : "factual_weights") << " cell " << c;
      }
  }
}

TEST(CudaCgKernels, UpdateAndDirectionMatchTheCpuRecurrence) {
  std::string why;
  if (!gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  const int64_t n = 1 << 20;
  std::vector<double> p(n), ap(n), x(n), r(n);
  Rng g(4, 1, 0);
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = g.normal(), ap[size_t(i)] = g.normal(), x[size_t(i)] = g.normal(), r[size_t(i)] = g.normal();
  Dev<double> pd(p), apd(ap), xd(x), rd(r);
  double rr_dev = 0, rr = 0;
  ASSERT_TRUE(cuda::cg_update<double>(0.37, pd.p, apd.p, xd.p, rd.p, n, &rr_dev, nullptr, &why)) << why;
  ASSERT_TRUE(cuda::cg_direction<double>(0.8, rd.p, pd.p, n, nullptr, &why)) << why;
  for (int64_t i = 0; i < n; ++i) rr += bilevel::rows::cg_update<double>(0.37, p[size_t(i)], ap[size_t(i)], x[size_t(i)], r[size_t(i)]);
  for (int64_t i = 0; i < n; ++i) bilevel::rows::cg_direction<double>(0.8, r[size_t(i)], p[size_t(i)]);
  EXPECT_LT(rel(rr_dev, rr), 1e-12);
  const std::vector<double> xg = xd.get(), rg = rd.get(), pg = pd.get();
  double err = 0;  // elementwise: the same operations (nvcc may fuse a multiply-add, so to rounding, not bitwise)
  for (int64_t i = 0; i < n; ++i)
    err = std::max({err, rel(xg[size_t(i)], x[size_t(i)]), rel(rg[size_t(i)], r[size_t(i)]), rel(pg[size_t(i)], p[size_t(i)])});
  EXPECT_LT(err, 1e-15);
}
