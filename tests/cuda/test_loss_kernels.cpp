// \brief The fused loss, IFD and λ* kernels against the CPU path (the same row functions run on the host): float64 to
// 1e-12, float32 to 1e-5 relative, on random batches with ties, padding rows (weight and gain 0) and a strided score
// view. Built whenever CUDA is (a compile-and-link check without a GPU); skipped at run time when no GPU is usable.
#include <cuda_runtime.h>  // for cudaMalloc, cudaMemcpy
#include <gtest/gtest.h>   // for TEST

#include <algorithm>  // for std::max
#include <cmath>      // for std::abs
#include <string>     // for std::string
#include <vector>     // for std::vector

#include "core/rng.h"            // for Rng
#include "cuda/device_buffer.h"  // for Dev, gpu
#include "cuda/lambda_kernels.h" // for ksection_pass, primal_lambda
#include "cuda/ifd_kernels.h"    // for ifd_estimate
#include "cuda/loss_kernels.h"   // for softmax_policy_term, factual_term
#include "loss/ifd_rows.h"       // for rows::ifd_row_state, ifd_row_dq, ifd_row_deltas, ifd_clip
#include "loss/rows.h"           // for rows::softmax_policy_row, rows::factual_row
#include "solver/ksection.h"     // for ksection_row, ksection_search

using namespace dfcl;
using cuda_test::Dev;
using cuda_test::gpu;

namespace {

double rel(double a, double b) { return std::abs(a - b) / std::max(1.0, std::abs(b)); }

// A batch: n rows of an n x 2m table (r̂ then ĉ, row stride 2m), arms, labels, weights; the last `pad` rows padding;
// rows 0..9 have tied revenue columns 0 and 1.
template <class T>
struct Batch {
  int64_t n;
  int m;
  std::vector<T> out, yr, yc, w, gain, u;
  std::vector<int64_t> t;
  Batch(int64_t n_, int m_, int64_t pad, uint64_t seed) : n(n_), m(m_) {
    out.resize(size_t(n) * 2 * m);
    for (int64_t i = 0; i < n; ++i) {
      Rng g(seed, 2, uint64_t(i));
      for (int j = 0; j < m; ++j) out[size_t(i) * 2 * m + j] = T(g.normal()), out[size_t(i) * 2 * m + m + j] = T(j * g.uniform());
      if (i < 10) out[size_t(i) * 2 * m + 1] = out[size_t(i) * 2 * m];
      t.push_back(int64_t(g.uniform() * m) % m);
      yr.push_back(T(g.uniform()));
      yc.push_back(T(t.back() == 0 ? 0 : g.uniform()));
      const bool padding = i >= n - pad;
      w.push_back(T(padding ? 0 : 1));
      gain.push_back(T(padding ? 0 : g.normal() / n));
      u.push_back(T(padding ? 0 : m));
    }
  }
  const T* r() const { return out.data(); }
  const T* c() const { return out.data() + m; }
  /// Contiguous n x m copies of r̂ and ĉ (the λ and IFD kernels read contiguous scores).
  void contiguous(std::vector<T>& rc, std::vector<T>& cc) const {
    rc.resize(size_t(n) * m), cc.resize(size_t(n) * m);
    for (int64_t i = 0; i < n; ++i)
      for (int j = 0; j < m; ++j) rc[size_t(i) * m + j] = r()[i * 2 * m + j], cc[size_t(i) * m + j] = c()[i * 2 * m + j];
  }
};

template <class T>
void softmax_and_factual(double tol) {
  const int64_t n = 100003;
  const int m = 5;
  Batch<T> b(n, m, 17, 21);
  // CPU path.
  std::vector<T> dr(size_t(n) * m, 0), dc(size_t(n) * m, 0), fr(size_t(n) * m, 0), fc(size_t(n) * m, 0);
  double v = 0, fv = 0;
  const loss::rows::FactualRow f{loss::OutcomeLoss::kMse, loss::OutcomeLoss::kMse, 1.0, 0.5};
  std::vector<T> scale(m);
  for (int j = 0; j < m; ++j) scale[size_t(j)] = T(1.0 / (m * (n / m)));
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T* ri = b.r() + i * 2 * m;
    const T* ci = b.c() + i * 2 * m;
    if (b.gain[size_t(i)] != T(0))
      v += loss::rows::softmax_policy_row<T>(ri, ci, 1, m, int(b.t[size_t(i)]), T(0.4), T(0.5), b.gain[size_t(i)],
                                             &dr[size_t(i) * m], &dc[size_t(i) * m]);
    const int j = int(b.t[size_t(i)]);
    fv += loss::rows::factual_row<T>(f, ri, ci, 1, j, b.yr[size_t(i)], b.yc[size_t(i)], b.w[size_t(i)] * scale[size_t(j)],
                                     &fr[size_t(i) * m], &fc[size_t(i) * m], bad);
  }
  // GPU path.
  Dev<T> out(b.out), g(b.gain), yr(b.yr), yc(b.yc), w(b.w), sc(scale);
  Dev<int64_t> t(b.t);
  Dev<T> ddr(std::vector<T>(size_t(n) * m, 0)), ddc(std::vector<T>(size_t(n) * m, 0));
  Dev<T> dfr(std::vector<T>(size_t(n) * m, 0)), dfc(std::vector<T>(size_t(n) * m, 0));
  Dev<double> val(std::vector<double>{0.0, 0.0});
  Dev<int> dbad(std::vector<int>{0});
  const cuda::DeviceScores<T> s{out.p, out.p + m, 2 * m, 2 * m, n, m};
  std::string why;
  ASSERT_TRUE(cuda::softmax_policy_term<T>(s, t.p, g.p, 0.4, 0.5, ddr.p, ddc.p, val.p, nullptr, &why)) << why;
  ASSERT_TRUE(cuda::factual_term<T>(f, s, t.p, yr.p, yc.p, w.p, sc.p, dfr.p, dfc.p, val.p + 1, dbad.p, nullptr, &why))
      << why;
  const std::vector<double> vals = val.get();
  EXPECT_LT(rel(vals[0], v), tol);
  EXPECT_LT(rel(vals[1], fv), tol);
  EXPECT_EQ(dbad.get()[0], 0);
  const std::vector<T> gdr = ddr.get(), gdc = ddc.get(), gfr = dfr.get(), gfc = dfc.get();
  // Each gradient table against the CPU's, relative to its largest entry.
  auto table_error = [](const std::vector<T>& got, const std::vector<T>& want) {
    double top = 0, err = 0;
    for (size_t k = 0; k < want.size(); ++k)
      top = std::max(top, std::abs(double(want[k]))), err = std::max(err, std::abs(double(got[k]) - double(want[k])));
    return top > 0 ? err / top : err;
  };
  EXPECT_LT(table_error(gdr, dr), tol);
  EXPECT_LT(table_error(gdc, dc), tol);
  EXPECT_LT(table_error(gfr, fr), tol);
  EXPECT_LT(table_error(gfc, fc), tol);
  for (int64_t i = n - 17; i < n; ++i)  // padding rows: no softmax gradient, no factual gradient
    for (int j = 0; j < m; ++j) {
      EXPECT_EQ(gdr[size_t(i) * m + j], T(0));
      EXPECT_EQ(gfr[size_t(i) * m + j], T(0));
    }
}

}  // namespace

TEST(CudaLossKernels, SoftmaxPolicyAndFactualMatchTheCpuPathFloat64) {
  std::string why;
  if (!gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  softmax_and_factual<double>(1e-12);
}

TEST(CudaLossKernels, SoftmaxPolicyAndFactualMatchTheCpuPathFloat32) {
  std::string why;
  if (!gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  softmax_and_factual<float>(1e-5);
}

TEST(CudaLambdaKernels, KSectionPassAndSearchMatchTheCpuPath) {
  std::string why;
  if (!gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  const int64_t n = 200001;
  const int m = 5;
  Batch<float> b(n, m, 11, 33);
  std::vector<float> r, c;
  b.contiguous(r, c);
  Dev<float> rd(r), cd(c), ud(b.u), yrd(b.yr), ycd(b.yc);
  Dev<int64_t> td(b.t);
  std::vector<double> lam(32);
  for (int k = 0; k < 32; ++k) lam[size_t(k)] = 0.05 * (k + 1);
  std::vector<double> gsums(64), csums(64, 0.0);
  ASSERT_TRUE(cuda::ksection_pass<float>(rd.p, cd.p, n, m, td.p, ud.p, yrd.p, ycd.p, lam.data(), 32, gsums.data(),
                                         nullptr, &why))
      << why;
  for (int64_t i = 0; i < n; ++i)
    solver::ksection_row(&r[size_t(i) * m], &c[size_t(i) * m], m, int(b.t[size_t(i)]), double(b.u[size_t(i)]),
                         double(b.yr[size_t(i)]), double(b.yc[size_t(i)]), lam.data(), 32, csums.data(),
                         csums.data() + 32);
  for (int k = 0; k < 64; ++k) EXPECT_LT(rel(gsums[size_t(k)], csums[size_t(k)]), 1e-12) << "value " << k;
  // The whole search against the CPU search on the same rows (same K): the same λ*.
  double total = 0;
  for (float x : b.w) total += x;
  const double full = csums[32] / total;
  for (double frac : {0.3, 0.6}) {
    solver::KSectionResult dev;
    ASSERT_TRUE(cuda::primal_lambda<float>(rd.p, cd.p, n, m, td.p, ud.p, yrd.p, ycd.p, total, frac * full, 32, 50, 1e-4,
                                           {}, {}, &dev, nullptr, &why))
        << why;
    double hi = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int j = 0; j < m && b.u[size_t(i)] > 0; ++j)
        if (c[size_t(i) * m + j] > 0) hi = std::max(hi, double(r[size_t(i) * m + j]) / c[size_t(i) * m + j]);
    auto eval = [&](const std::vector<double>& l, std::vector<double>& rev, std::vector<double>& cost) {
      const int K = int(l.size());
      std::vector<double> s(2 * size_t(K), 0.0);
      for (int64_t i = 0; i < n; ++i)
        solver::ksection_row(&r[size_t(i) * m], &c[size_t(i) * m], m, int(b.t[size_t(i)]), double(b.u[size_t(i)]),
                             double(b.yr[size_t(i)]), double(b.yc[size_t(i)]), l.data(), K, s.data(), s.data() + K);
      for (int k = 0; k < K; ++k) rev[size_t(k)] = s[size_t(k)] / total, cost[size_t(k)] = s[size_t(K + k)] / total;
    };
    const solver::KSectionResult cpu =
        solver::ksection_search(eval, hi, frac * full, 32, solver::ksection_passes(32, 50), 1e-4);
    EXPECT_NEAR(dev.lambda, cpu.lambda, 1e-9 * hi) << "budget x" << frac;
    EXPECT_EQ(dev.matched, cpu.matched);
    EXPECT_LT(rel(dev.cost, cpu.cost), 1e-12);
  }
}

namespace {
// The CPU path's three passes (loss/ifd_estimator.cpp estimate_rows) over host rows, with the same row functions.
struct HostIfd {
  std::vector<uint8_t> matched;
  std::vector<double> dq, d1, g1, d2, g2;
};
HostIfd host_ifd(const std::vector<double>& r, const std::vector<double>& c, int64_t n, int m,
                 const std::vector<int64_t>& t, const std::vector<double>& u, const std::vector<double>& yr,
                 const std::vector<double>& yc, loss::rows::IfdRowSettings o) {
  HostIfd h;
  h.matched.resize(size_t(n)), h.dq.resize(size_t(n));
  h.d1.assign(size_t(n) * m, 0.0), h.g1 = h.d1, h.d2 = h.d1, h.g2 = h.d1;
  loss::rows::IfdRowState s;
  double w = 0, sr = 0, sc = 0;
  for (int64_t i = 0; i < n; ++i) {
    loss::rows::ifd_row_state(&r[size_t(i) * m], &c[size_t(i) * m], 1, m, int(t[size_t(i)]), o.lambda, s);
    h.matched[size_t(i)] = s.matched;
    if (s.matched) w += u[size_t(i)], sr += u[size_t(i)] * yr[size_t(i)], sc += u[size_t(i)] * yc[size_t(i)];
  }
  o.w = w, o.rbar = w > 0 ? sr / w : 0, o.cbar = w > 0 ? sc / w : 0;
  const int width = o.score ? m : 4;
  std::vector<double> raw(size_t(n) * width);
  std::vector<int> other(static_cast<size_t>(n));
  double mx[2] = {0, 0};
  for (int64_t i = 0; i < n; ++i) {
    loss::rows::ifd_row_state(&r[size_t(i) * m], &c[size_t(i) * m], 1, m, int(t[size_t(i)]), o.lambda, s);
    h.dq[size_t(i)] = loss::rows::ifd_row_dq(s, u[size_t(i)], yr[size_t(i)], yc[size_t(i)], o);
    loss::rows::ifd_row_deltas(s, m, int(t[size_t(i)]), u[size_t(i)], o, &raw[size_t(i) * width], &other[size_t(i)]);
    for (int j = 0; j < width; ++j) mx[o.score ? 0 : j / 2] = std::max(mx[o.score ? 0 : j / 2], std::abs(raw[size_t(i) * width + j]));
  }
  for (int64_t i = 0; i < n; ++i) {
    const double* d = &raw[size_t(i) * width];
    if (o.score) {
      for (int j = 0; j < m; ++j)
        loss::rows::ifd_clip(d[j], h.dq[size_t(i)], o, mx[0], h.d1[size_t(i) * m + j], h.g1[size_t(i) * m + j]);
      continue;
    }
    const int cols[2] = {int(t[size_t(i)]), other[size_t(i)]};
    for (int q = 0; q < 2; ++q) {
      loss::rows::ifd_clip(d[q], h.dq[size_t(i)], o, mx[0], h.d1[size_t(i) * m + cols[q]], h.g1[size_t(i) * m + cols[q]]);
      loss::rows::ifd_clip(d[2 + q], h.dq[size_t(i)], o, mx[1], h.d2[size_t(i) * m + cols[q]], h.g2[size_t(i) * m + cols[q]]);
    }
  }
  return h;
}
}  // namespace

TEST(CudaIfdKernels, EveryPerturbationNormalisationAndClipMatchesTheCpuRows) {
  std::string why;
  if (!gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  const int64_t n = 30011;
  const int m = 4;
  Batch<double> b(n, m, 9, 44);
  std::vector<double> r, c, u(b.u.begin(), b.u.end());
  b.contiguous(r, c);
  Dev<double> rd(r), cd(c), ud(u), yrd(b.yr), ycd(b.yc);
  Dev<int64_t> td(b.t);
  const std::vector<double> zeros(size_t(n) * m, 0.0);
  Dev<double> dq(std::vector<double>(static_cast<size_t>(n))), d1(zeros), g1(zeros), d2(zeros), g2(zeros);
  Dev<uint8_t> matched(std::vector<uint8_t>(static_cast<size_t>(n)));
  for (bool score : {false, true})
    for (bool self : {false, true})
      for (int clip = 0; clip < 4; ++clip) {
        SCOPED_TRACE(testing::Message() << "score " << score << " self " << self << " clip " << clip);
        loss::rows::IfdRowSettings o;
        o.lambda = 0.6, o.kappa = score ? 0.0 : 0.6, o.score = score, o.self = self, o.clip = clip, o.h = 0.25;
        o.n = double(n - 9);
        ASSERT_TRUE(cuda::ifd_estimate<double>(rd.p, cd.p, n, m, td.p, ud.p, yrd.p, ycd.p, o, {}, {},
                                               {matched.p, dq.p, d1.p, g1.p, d2.p, g2.p}, nullptr, &why))
            << why;
        const HostIfd h = host_ifd(r, c, n, m, b.t, u, b.yr, b.yc, o);
        EXPECT_EQ(matched.get(), h.matched);
        auto worst = [](const std::vector<double>& got, const std::vector<double>& want) {
          double e = 0;
          for (size_t k = 0; k < want.size(); ++k) e = std::max(e, rel(got[k], want[k]));
          return e;
        };
        EXPECT_LT(worst(dq.get(), h.dq), 1e-12);  // self: W, rbar, cbar summed in another order
        EXPECT_LT(worst(d1.get(), h.d1), 1e-12);
        EXPECT_LT(worst(g1.get(), h.g1), 1e-10);
        if (!score) {
          EXPECT_LT(worst(d2.get(), h.d2), 1e-12);
          EXPECT_LT(worst(g2.get(), h.g2), 1e-10);
        }
      }
}

TEST(CudaLossKernels, DhclMatchesTheCpuRowsInBothForms) {
  std::string why;
  if (!gpu(&why)) GTEST_SKIP() << "no GPU: " << why;
  const int64_t n = 70001;
  const int m = 3;
  Batch<double> b(n, m, 5, 61);
  std::vector<double> ca(static_cast<size_t>(n)), cb(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    for (int j = 0; j < m; ++j) b.out[size_t(i) * 2 * m + j] *= 12;  // beyond the clamp (≈ 13.8) on some rows
    ca[size_t(i)] = b.w[size_t(i)] / 100.0, cb[size_t(i)] = b.t[size_t(i)] + 1 < m ? -b.w[size_t(i)] / 90.0 : 0.0;
  }
  Dev<double> out(b.out), yr(b.yr), yc(b.yc), cad(ca), cbd(cb);
  Dev<int64_t> t(b.t);
  const double bound = std::log((1 - 1e-6) / 1e-6);
  for (bool sigmoid : {true, false}) {
    Dev<double> dr(std::vector<double>(size_t(n) * m, 0.0)), val(std::vector<double>{0.0});
    const cuda::DeviceScores<double> s{out.p, out.p + m, 2 * m, 2 * m, n, m};
    ASSERT_TRUE(cuda::dhcl_term<double>(sigmoid, s, t.p, yr.p, yc.p, cad.p, cbd.p, bound, dr.p, val.p, nullptr, &why))
        << why;
    std::vector<double> want(size_t(n) * m, 0.0);
    double v = 0;
    for (int64_t i = 0; i < n; ++i)
      v += loss::rows::dhcl_row<double>(sigmoid, b.r() + i * 2 * m, 1, m, int(b.t[size_t(i)]), b.yr[size_t(i)],
                                        b.yc[size_t(i)], ca[size_t(i)], cb[size_t(i)], bound, &want[size_t(i) * m]);
    EXPECT_LT(rel(val.get()[0], v), 1e-12) << (sigmoid ? "sigmoid" : "exp");
    const std::vector<double> got = dr.get();
    double err = 0;
    for (size_t k = 0; k < got.size(); ++k) err = std::max(err, rel(got[k], want[k]));
    EXPECT_LT(err, 1e-12) << (sigmoid ? "sigmoid" : "exp");
  }
}
