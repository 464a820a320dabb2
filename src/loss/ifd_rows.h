// \brief The IFD estimator's per-row math (ifd_estimator.h), torch-free, in float64: the row's argmax policy and
// runner-up, ΔQ_i, the minimal flipping perturbations, and the clip. ifd_estimate runs it over CPU rows in three passes
// (the matched rows' sums for self-normalisation, the perturbations and their maxima for clip max, then the clip and
// G = ΔQ/δ) and cuda/ifd_kernels.cu over device rows, the same arithmetic on both.
//
// Ties: π_i is the lowest-index arm of the largest a_ij, the runner-up k_i the lowest-index arm of the largest a_ij over
// j ≠ π_i (a fixed rule the CPU and the GPU share).
#pragma once
#include <cstdint>  // for int64_t

#include "core/host_device.h"  // for DFCL_HD

namespace dfcl::loss::rows {

/// The estimator's settings for one λ, plus the batch's global quantities once they are known.
struct IfdRowSettings {
  double lambda = 0;        // a = r̂ − λ ĉ (λ = 0: a = r̂)
  double kappa = 0;         // λ for the dual objective, 0 for the primal one
  bool score = false;       // perturbation: score (true) or revenue_cost
  bool self = false;        // normalisation: self (true) or ht
  bool strict_flips = false;
  double eps0 = 1e-6;
  double n = 0;                      // ht: the global batch weight N
  double w = 0, rbar = 0, cbar = 0;  // self: W and the matched rows' means
  int clip = 1;                      // IfdClip: 0 none, 1 fix, 2 floor, 3 max
  double h = 0.3;
};

/// One row's policy facts: a_ij, π_i, k_i, whether π_i = t_i, and the flip gap (>= 0).
struct IfdRowState {
  double a[64];
  int pi = 0, k = 0;
  bool matched = false;
  double gap = 0;
};

/// a = r̂ − ĉ λ over m arms (float or double scores, at a column step), π, k, matched and the gap.
template <class T>
DFCL_HD inline void ifd_row_state(const T* r, const T* c, int64_t step, int m, int t, double lambda, IfdRowState& s) {
  for (int j = 0; j < m; ++j) s.a[j] = lambda != 0 ? double(r[j * step]) - double(c[j * step]) * lambda : double(r[j * step]);
  int pi = 0;
  for (int j = 1; j < m; ++j)
    if (s.a[j] > s.a[pi]) pi = j;
  int k = pi == 0 ? 1 : 0;
  for (int j = 0; j < m; ++j)
    if (j != pi && s.a[j] > s.a[k]) k = j;
  s.pi = pi, s.k = k, s.matched = pi == t;
  s.gap = s.matched ? s.a[pi] - s.a[k] : s.a[pi] - s.a[t];
}

/// ΔQ_i: the change of the batch objective when row i flips (ifd_estimator.h), 0 for padding rows and the self guard.
DFCL_HD inline double ifd_row_dq(const IfdRowState& s, double u, double y_r, double y_c, const IfdRowSettings& o) {
  if (!(u > 0)) return 0;
  const double sgn = s.matched ? -1.0 : 1.0;
  if (!o.self) {
    if (!(o.n > 0)) return 0;
    const double net = o.kappa != 0 ? y_r - y_c * o.kappa : y_r;
    return sgn * u * net / o.n;
  }
  const double su = sgn * u, w2 = su + o.w;
  if (!(w2 > 0)) return 0;
  double diff = y_r - o.rbar;
  if (o.kappa != 0) diff = diff - (y_c - o.cbar) * o.kappa;
  return su * diff / w2;
}

/// The row's unclipped perturbations. revenue_cost: out[0], out[1] = δ^r at (t, other), out[2], out[3] = δ^c there,
/// *other = k_i on S+ and π_i on S−. score: out[j] = δ^s_j for every arm j. Padding rows get zeros.
DFCL_HD inline void ifd_row_deltas(const IfdRowState& s, int m, int t, double u, const IfdRowSettings& o, double* out,
                                   int* other) {
  const bool live = u > 0;
  const bool keep_other = o.strict_flips ? live && (s.matched || s.k == t) : live;
  const double sgn = s.matched ? -1.0 : 1.0, step = s.gap + o.eps0;
  if (!o.score) {
    const double cstep = s.gap / o.lambda + o.eps0;  // eps0 after dividing by λ, as the reference code
    *other = s.matched ? s.k : s.pi;
    out[0] = live ? sgn * step : 0.0;
    out[1] = keep_other ? -sgn * step : 0.0;
    out[2] = live ? -sgn * cstep : 0.0;
    out[3] = keep_other ? sgn * cstep : 0.0;
    return;
  }
  for (int j = 0; j < m; ++j) out[j] = 0;
  if (!live) return;
  if (s.matched) {
    for (int j = 0; j < m; ++j) out[j] = (s.a[t] - s.a[j]) + o.eps0;
    out[t] = -step;
  } else {
    out[t] = step;
    out[s.pi] = keep_other ? -step : 0.0;
  }
}

/// The clip of one perturbation δ (`global_max`: the batch's max |δ| of its matrix, for clip max) and G = ΔQ/δ on the
/// entries that pass it: writes the clipped δ (0 where it does not pass) and G (0 there).
DFCL_HD inline void ifd_clip(double delta, double dq, const IfdRowSettings& o, double global_max, double& clipped,
                             double& g) {
  const double mag = delta < 0 ? -delta : delta, sgn = delta > 0 ? 1.0 : (delta < 0 ? -1.0 : 0.0);
  bool pass = delta != 0;
  double d = delta;
  switch (o.clip) {
    case 0:
      break;
    case 1:
      pass = pass && mag < o.h, d = sgn * o.h;
      break;
    case 2:
      d = sgn * (mag < o.h ? o.h : mag);
      break;
    default:
      d = sgn * global_max;
      break;
  }
  clipped = pass ? d : 0.0;
  g = pass ? dq / d : 0.0;
}

}  // namespace dfcl::loss::rows
