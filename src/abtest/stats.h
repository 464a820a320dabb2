// \brief Additive sufficient statistics reduced across ranks, and small dense symmetric solves in float64.
//
// Every estimator is a function of sums over units. Each rank adds its own units into the structures below and
// reduce() adds them over ranks with one Communicator::allreduce_values, so every rank holds the global sums (bitwise
// the same on every rank: the communicator reduces in a fixed order) and takes the same decisions from them. Moments
// are taken in two passes (means first, then sums about the means), so a metric with a large mean and a small spread
// (GMV in the thousands, differences in cents) loses no precision to cancellation.
#pragma once
#include <cstddef>  // for size_t
#include <cstdint>  // for int64_t, uint8_t
#include <vector>   // for std::vector

namespace dfcl::dist {
class Communicator;
}

namespace dfcl::abtest {

/// Moments of a pair (u, v) over a set of units: count, means, and sums of squares and cross-products about the means.
struct Moments {
  double n = 0, mean_u = 0, mean_v = 0;
  double suu = 0, svv = 0, suv = 0;  // sum (u - mean_u)^2, sum (v - mean_v)^2, sum (u - mean_u)(v - mean_v)
  double var_u() const { return suu / (n - 1); }  // sample variances and covariance (n - 1)
  double var_v() const { return svv / (n - 1); }
  double cov_uv() const { return suv / (n - 1); }
};

/// Moments of (u, v) in each arm (index 1 = treatment, 0 = control) and over both arms pooled.
struct ArmMoments {
  Moments arm[2];
  Moments pooled;
};

/// Collective: the moments of every rank's units (this rank's n units: u[i], v[i], arm t[i]); `v` may be null (its
/// moments are then 0). Two all-reduces: per-arm sums, then per-arm sums about the global arm means.
ArmMoments arm_moments(const double* u, const double* v, const uint8_t* t, int64_t n, dist::Communicator& comm);

/// Weighted normal equations of a k-column design: sum w z z' (k x k, row-major, symmetric), sum w z y, sum w, plus
/// `extra` free sums that travel in the same all-reduce. add() per unit, reduce() once (one all-reduce).
class NormalEquations {
 public:
  explicit NormalEquations(int k, int extra = 0);
  int k() const { return k_; }
  void add(const double* z, double w, double y) {
    double* a = sums_.data();
    for (int r = 0; r < k_; ++r) {
      const double wz = w * z[r];
      for (int c = r; c < k_; ++c) *a++ += wz * z[c];  // upper triangle, row by row
      sums_[tri_ + size_t(r)] += wz * y;
    }
    sums_[tri_ + size_t(k_)] += w;
  }
  double& extra(int j) { return sums_[tri_ + size_t(k_) + 1 + size_t(j)]; }
  double extra(int j) const { return sums_[tri_ + size_t(k_) + 1 + size_t(j)]; }
  /// Adds the sums over ranks (collective).
  void reduce(dist::Communicator& comm);
  /// Adds another set of sums (same k and extra) into this one.
  void add_sums(const NormalEquations& other);
  std::vector<double> zwz() const;  // k x k, row-major, both triangles
  std::vector<double> zwy() const;
  double sum_w() const { return sums_[tri_ + size_t(k_)]; }
  /// The sums in storage order (upper triangle of Z'WZ row by row, Z'Wy, sum w, extras), for hand-unrolled loops.
  double* raw() { return sums_.data(); }

 private:
  int k_;
  size_t tri_;                // k (k + 1) / 2
  std::vector<double> sums_;  // upper triangle of Z'WZ, Z'Wy, sum w, extras
};

/// In-place Cholesky factor L (lower triangle, row-major k x k) of a symmetric matrix. Returns -1 when positive
/// definite, else the first column whose pivot is <= rel_tol times its diagonal entry (that column is, to rel_tol, a
/// linear combination of the previous ones; or the matrix is indefinite).
int cholesky(std::vector<double>& a, int k, double rel_tol = 1e-12);
/// Solves L L' x = b with the factor from cholesky().
std::vector<double> cholesky_solve(const std::vector<double>& l, int k, std::vector<double> b);
/// The inverse (k x k, row-major) from the factor from cholesky().
std::vector<double> cholesky_inverse(const std::vector<double>& l, int k);
/// x' M x for a k x k row-major matrix, and M x.
double quadratic_form(const std::vector<double>& m, const std::vector<double>& x);
std::vector<double> mat_vec(const std::vector<double>& m, const std::vector<double>& x);
/// A B for k x k row-major matrices.
std::vector<double> mat_mul(const std::vector<double>& a, const std::vector<double>& b, int k);

}  // namespace dfcl::abtest
