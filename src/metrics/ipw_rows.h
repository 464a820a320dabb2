// \brief The per-row part of IpwPath (ipw_path.h), torch-free: the λ interval in which a row's dual policy picks the
// arm the row received (its entry and exit events) and the row's share of the λ bound. IpwPath's constructor and the
// device evaluation (cuda/eval_kernels.cu) call the same function.
#pragma once
#include <cstdint>  // for uint8_t

#include "core/host_device.h"      // for DFCL_HD
#include "metrics/lambda_bound.h"  // for LambdaBound, add_row_bound
#include "solver/hull.h"           // for row_hull, breakpoint, kMaxArms

namespace dfcl::metrics {

/// One row: `events` = 0 when arm t is not on the row's hull (it never counts), 1 when t is the last hull arm (it
/// enters and never leaves), 2 otherwise; `enter` is the breakpoint into t (+inf for the cheapest hull arm: it counts
/// from λ = +inf), `leave` the breakpoint out of it. `bound` gets the row's contribution to the λ bound.
struct IpwRowEvents {
  int events = 0;
  double enter = 0, leave = 0;
};

DFCL_HD inline IpwRowEvents ipw_row_events(const float* r, const float* c, int m, int t, LambdaBound& bound) {
  uint8_t h[solver::kMaxArms];
  const int hs = solver::row_hull(r, c, m, h);
  add_row_bound(r, c, m, h, hs, bound);
  IpwRowEvents e;
  int k = -1;
  for (int q = 0; q < hs && k < 0; ++q)
    if (h[q] == t) k = q;
  if (k < 0) return e;
  e.events = 1 + (k < hs - 1);
  e.enter = k == 0 ? HUGE_VAL : solver::breakpoint(r, c, h[k - 1], h[k]);
  if (k < hs - 1) e.leave = solver::breakpoint(r, c, h[k], h[k + 1]);
  return e;
}

}  // namespace dfcl::metrics
