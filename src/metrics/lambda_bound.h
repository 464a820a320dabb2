// \brief Where a lambda bisection starts: the spec's upper bound on the dual price, made safe for any scores.
#pragma once
#include <algorithm>  // for std::max
#include <cstdint>    // for uint8_t

#include "solver/hull.h"    // for breakpoint
#include "solver/scores.h"  // for Scores

namespace dfcl::metrics {

/// Predicted costs at or below this count as free when bounding lambda (control often costs exactly 0).
inline constexpr double kTinyCost = 1e-9;

struct LambdaBound {
  double spec = 0;  // max over c_hat_ij > kTinyCost of r_hat_ij / c_hat_ij (spec §2.3); 0 when no arm costs anything
  double hi = 0;    // max(spec, largest hull breakpoint): at hi every user is on their cheapest arm
  bool raised() const { return hi > spec; }
};

/// One row's contribution: its largest r/c ratio and its first (largest) hull breakpoint. `hull` from row_hull().
/// A row function: the CPU path (IpwPath) and the device evaluation (cuda/eval_kernels.cu) both call it.
DFCL_HD inline void add_row_bound(const float* r, const float* c, int m, const uint8_t* hull, int hull_size,
                                  LambdaBound& b) {
  for (int j = 0; j < m; ++j)
    if (c[j] > kTinyCost) {
      const double q = double(r[j]) / c[j];
      b.spec = q > b.spec ? q : b.spec;
    }
  if (hull_size > 1) {
    const double q = solver::breakpoint(r, c, hull[0], hull[1]);
    b.hi = q > b.hi ? q : b.hi;
  }
}
inline void merge_bound(const LambdaBound& from, LambdaBound& into) {
  into.spec = std::max(into.spec, from.spec);
  into.hi = std::max(into.hi, from.hi);
}
inline void finish_bound(LambdaBound& b) { b.hi = std::max(b.hi, b.spec); }

/// The bound over all rows of `s` (O(N M log M), on `threads` threads; 0 = all cores).
LambdaBound lambda_bound(const solver::Scores& s, int threads = 0);

}  // namespace dfcl::metrics
