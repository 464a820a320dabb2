// \brief Moments, normal equations and the Cholesky solves (see stats.h).
#include "abtest/stats.h"

#include <cmath>  // for std::sqrt

#include "dist/communicator.h"  // for Communicator

namespace dfcl::abtest {

ArmMoments arm_moments(const double* u, const double* v, const uint8_t* t, int64_t n, dist::Communicator& comm) {
  // Pass 1: per-arm count and sums.
  std::vector<double> s(6, 0.0);  // n, sum u, sum v per arm
  for (int64_t i = 0; i < n; ++i) {
    double* a = s.data() + 3 * (t[i] ? 1 : 0);
    a[0] += 1, a[1] += u[i];
    if (v) a[2] += v[i];
  }
  comm.allreduce_values(s);
  ArmMoments m;
  for (int g = 0; g < 2; ++g) {
    Moments& a = m.arm[g];
    a.n = s[3 * g];
    a.mean_u = a.n > 0 ? s[3 * g + 1] / a.n : 0;
    a.mean_v = a.n > 0 ? s[3 * g + 2] / a.n : 0;
  }
  // Pass 2: sums about the arm means.
  std::vector<double> c(6, 0.0);  // suu, svv, suv per arm
  for (int64_t i = 0; i < n; ++i) {
    const int g = t[i] ? 1 : 0;
    const double du = u[i] - m.arm[g].mean_u, dv = v ? v[i] - m.arm[g].mean_v : 0.0;
    double* a = c.data() + 3 * g;
    a[0] += du * du, a[1] += dv * dv, a[2] += du * dv;
  }
  comm.allreduce_values(c);
  Moments& p = m.pooled;
  p.n = m.arm[0].n + m.arm[1].n;
  for (int g = 0; g < 2; ++g) {
    Moments& a = m.arm[g];
    a.suu = c[3 * g], a.svv = c[3 * g + 1], a.suv = c[3 * g + 2];
    if (p.n > 0) p.mean_u += a.n / p.n * a.mean_u, p.mean_v += a.n / p.n * a.mean_v;
  }
  for (int g = 0; g < 2; ++g) {  // within-arm plus between-arm parts
    const Moments& a = m.arm[g];
    const double du = a.mean_u - p.mean_u, dv = a.mean_v - p.mean_v;
    p.suu += a.suu + a.n * du * du;
    p.svv += a.svv + a.n * dv * dv;
    p.suv += a.suv + a.n * du * dv;
  }
  return m;
}

NormalEquations::NormalEquations(int k, int extra)
    : k_(k), tri_(size_t(k) * size_t(k + 1) / 2), sums_(tri_ + size_t(k) + 1 + size_t(extra), 0.0) {}

void NormalEquations::reduce(dist::Communicator& comm) { comm.allreduce_values(sums_); }

void NormalEquations::add_sums(const NormalEquations& other) {
  for (size_t j = 0; j < sums_.size(); ++j) sums_[j] += other.sums_[j];
}

std::vector<double> NormalEquations::zwz() const {
  std::vector<double> m(size_t(k_) * size_t(k_));
  const double* a = sums_.data();
  for (int r = 0; r < k_; ++r)
    for (int c = r; c < k_; ++c) m[size_t(r) * k_ + c] = m[size_t(c) * k_ + r] = *a++;
  return m;
}

std::vector<double> NormalEquations::zwy() const {
  return std::vector<double>(sums_.begin() + long(tri_), sums_.begin() + long(tri_) + k_);
}

int cholesky(std::vector<double>& a, int k, double rel_tol) {
  for (int j = 0; j < k; ++j) {
    const double diag = a[size_t(j) * k + j];
    double s = diag;
    for (int p = 0; p < j; ++p) s -= a[size_t(j) * k + p] * a[size_t(j) * k + p];
    if (!(s > rel_tol * diag) || !(diag > 0)) return j;
    const double l = std::sqrt(s);
    a[size_t(j) * k + j] = l;
    for (int i = j + 1; i < k; ++i) {
      double t = a[size_t(i) * k + j];
      for (int p = 0; p < j; ++p) t -= a[size_t(i) * k + p] * a[size_t(j) * k + p];
      a[size_t(i) * k + j] = t / l;
    }
    for (int c = j + 1; c < k; ++c) a[size_t(j) * k + c] = 0;  // keep only the lower triangle
  }
  return -1;
}

std::vector<double> cholesky_solve(const std::vector<double>& l, int k, std::vector<double> b) {
  for (int i = 0; i < k; ++i) {  // L y = b
    for (int p = 0; p < i; ++p) b[i] -= l[size_t(i) * k + p] * b[p];
    b[i] /= l[size_t(i) * k + i];
  }
  for (int i = k - 1; i >= 0; --i) {  // L' x = y
    for (int p = i + 1; p < k; ++p) b[i] -= l[size_t(p) * k + i] * b[p];
    b[i] /= l[size_t(i) * k + i];
  }
  return b;
}

std::vector<double> cholesky_inverse(const std::vector<double>& l, int k) {
  std::vector<double> inv(size_t(k) * k);
  for (int c = 0; c < k; ++c) {
    std::vector<double> e(k, 0.0);
    e[c] = 1;
    e = cholesky_solve(l, k, e);
    for (int r = 0; r < k; ++r) inv[size_t(r) * k + c] = e[r];
  }
  for (int r = 0; r < k; ++r)  // symmetrise the rounding
    for (int c = r + 1; c < k; ++c)
      inv[size_t(r) * k + c] = inv[size_t(c) * k + r] = 0.5 * (inv[size_t(r) * k + c] + inv[size_t(c) * k + r]);
  return inv;
}

std::vector<double> mat_vec(const std::vector<double>& m, const std::vector<double>& x) {
  const size_t k = x.size();
  std::vector<double> y(k, 0.0);
  for (size_t r = 0; r < k; ++r)
    for (size_t c = 0; c < k; ++c) y[r] += m[r * k + c] * x[c];
  return y;
}

double quadratic_form(const std::vector<double>& m, const std::vector<double>& x) {
  const std::vector<double> y = mat_vec(m, x);
  double s = 0;
  for (size_t r = 0; r < x.size(); ++r) s += x[r] * y[r];
  return s;
}

std::vector<double> mat_mul(const std::vector<double>& a, const std::vector<double>& b, int k) {
  std::vector<double> c(size_t(k) * k, 0.0);
  for (int r = 0; r < k; ++r)
    for (int p = 0; p < k; ++p)
      for (int q = 0; q < k; ++q) c[size_t(r) * k + q] += a[size_t(r) * k + p] * b[size_t(p) * k + q];
  return c;
}

}  // namespace dfcl::abtest
