// \brief Per-user upper convex hull of the (cost, revenue) points: the only arms a dual policy can pick.
//
// For lambda >= 0 the user picks argmax_j r_j - lambda c_j. Sweeping lambda from +inf down to 0 walks the
// upper-left hull from the cheapest arm (ties: higher revenue, then lower index) to the best-revenue arm; the
// slopes between consecutive hull arms are the user's breakpoints, strictly decreasing and > 0.
// Written as a plain per-row function so that a CUDA kernel can call it unchanged (cuda/).
#pragma once
#include <cstdint>  // for uint8_t

#include "core/host_device.h"  // for DFCL_HD

namespace dfcl::solver {

inline constexpr int kMaxArms = 64;

/// Writes the hull's arm indices (in increasing cost) to `hull` and returns their count (>= 1).
/// Arms that are dominated (costlier and not better) or under the hull are never chosen for any lambda >= 0.
/// Ties are deterministic: equal cost keeps the higher revenue, then the lower arm index.
DFCL_HD inline int row_hull(const float* r, const float* c, int m, uint8_t* hull) {
  // Insertion sort of arm indices by (cost asc, revenue desc, index asc); m is small (<= 64).
  // Arms usually come in increasing cost already; then the sort is one pass of comparisons.
  uint8_t order[kMaxArms];
  bool sorted = true;
  for (int j = 1; j < m && sorted; ++j) sorted = c[j] > c[j - 1];
  for (int j = 0; j < m && sorted; ++j) order[j] = static_cast<uint8_t>(j);
  for (int j = 0; j < m && !sorted; ++j) {
    int k = j;
    while (k > 0) {
      int p = order[k - 1];
      bool before = c[j] < c[p] || (c[j] == c[p] && (r[j] > r[p] || (r[j] == r[p] && j < p)));
      if (!before) break;
      order[k] = order[k - 1];
      --k;
    }
    order[k] = static_cast<uint8_t>(j);
  }
  int h = 0;
  for (int t = 0; t < m; ++t) {
    const int j = order[t];
    if (h > 0) {
      const int last = hull[h - 1];
      if (c[j] == c[last] || r[j] <= r[last]) continue;  // same cost (worse or equal) or no more revenue: dominated
      // Pop points that fall on or under the segment to j (keep strictly concave slopes).
      while (h >= 2) {
        const int a = hull[h - 2], b = hull[h - 1];
        // slope(a,b) <= slope(b,j)  <=>  (r_b - r_a)(c_j - c_b) <= (r_j - r_b)(c_b - c_a)
        double lhs = (double(r[b]) - r[a]) * (double(c[j]) - c[b]);
        double rhs = (double(r[j]) - r[b]) * (double(c[b]) - c[a]);
        if (lhs <= rhs) --h;
        else break;
      }
    }
    hull[h++] = static_cast<uint8_t>(j);
  }
  return h;
}

/// The dual policy of one user at lambda: the highest r_j - lambda c_j; ties go to the cheaper arm, then the lower
/// index (the hull's order). The one rule for policy_at, the metrics and any kernel.
template <class T>
DFCL_HD inline int row_policy(const T* r, const T* c, int m, double lambda) {
  int best = 0;
  double bv = double(r[0]) - lambda * c[0];
  for (int j = 1; j < m; ++j) {
    const double v = double(r[j]) - lambda * c[j];
    if (v > bv || (v == bv && c[j] < c[best])) best = j, bv = v;
  }
  return best;
}

/// Breakpoint between hull arms a (cheaper) and b: the lambda at which the user switches from a to b.
DFCL_HD inline double breakpoint(const float* r, const float* c, int a, int b) {
  return (double(r[b]) - r[a]) / (double(c[b]) - c[a]);
}

}  // namespace dfcl::solver
