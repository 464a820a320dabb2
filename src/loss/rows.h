// \brief The per-row math of the fused loss paths, torch-free: the CPU fused path (factual_terms.cpp,
// softmax_policy.cpp) and the CUDA kernels (cuda/loss_kernels.cu) call these same functions, so the CPU
// tests cover the GPU's arithmetic and the GPU tests only compare a kernel with its CPU path.
//
// Conventions: T is float or double; a row of scores is m values at a column step (r[j * step]), so a view of the
// net's B x 2M output needs no copy; gradients are added to (never written over) the caller's row of d_r / d_c, which
// is contiguous. Sums over rows stay with the caller (in double on the CPU, a two-stage block reduction on the GPU).
#pragma once
#include <cstdint>  // for int64_t

#include "core/host_device.h"  // for DFCL_HD, hd::exp, hd::log
#include "solver/hull.h"       // for kMaxArms

namespace dfcl::loss {

/// Per-outcome loss: squared error, or binary cross-entropy on a probability (labels must lie in [0, 1]).
enum class OutcomeLoss { kMse, kBce };

namespace rows {

inline constexpr double kBceTiny = 1e-30;  // BCE's clamp on p and 1 - p

/// l(y, p) and dl/dp of one outcome: mse (p − y)²; bce −(y log p + (1 − y) log(1 − p)) with p and 1 − p clamped at
/// kBceTiny, where a clamp is active the gradient is 0 (a saturated sigmoid never gives NaN). Returns false for a bce
/// label outside [0, 1] (NaN passes, as the ATen path's aminmax check).
template <class T>
DFCL_HD inline bool outcome(OutcomeLoss kind, T y, T p, T& l, T& dl) {
  if (kind == OutcomeLoss::kMse) {
    const T diff = p - y;
    l = diff * diff, dl = 2 * diff;
    return true;
  }
  const bool ok = (y >= 0 && y <= 1) || y != y;
  const T q = 1 - p, tiny = T(kBceTiny);
  const T pc = p < tiny ? tiny : p, qc = q < tiny ? tiny : q;
  l = -(y * hd::log(pc) + (1 - y) * hd::log(qc));
  dl = (q >= tiny ? (1 - y) / qc : T(0)) - (p >= tiny ? y / pc : T(0));
  return ok;
}

/// The settings of the factual (prediction) row: a_r l_r(y_r, r̂_t) + a_c l_c(y_c, ĉ_t); an outcome with weight 0 is
/// not evaluated.
struct FactualRow {
  OutcomeLoss revenue = OutcomeLoss::kMse, cost = OutcomeLoss::kMse;
  double revenue_weight = 1, cost_weight = 1;
};

/// One row of TSM-SL's L_PL (and α·L_PL inside the decision losses): coef · (a_r l_r + a_c l_c) at the received arm t,
/// coef = w_i / (M N_t) as PredictionTerm::arm_scale. Adds coef · a · dl/dp to dr[t] and dc[t]; returns the row's
/// value. `bad` gets bit 1 for a bad revenue label, bit 2 for a bad cost label (bce).
template <class T>
DFCL_HD inline double factual_row(const FactualRow& f, const T* r, const T* c, int64_t step, int t, T y_r, T y_c,
                                  T coef, T* dr, T* dc, int& bad) {
  double value = 0;
  T l, dl;
  const T ar = T(f.revenue_weight), ac = T(f.cost_weight);
  if (ar > 0) {
    if (!outcome(f.revenue, y_r, r[t * step], l, dl)) bad |= 1;
    value += double(coef * l) * double(ar);
    dr[t] += coef * dl * ar;
  }
  if (ac > 0) {
    if (!outcome(f.cost, y_c, c[t * step], l, dl)) bad |= 2;
    value += double(coef * l) * double(ac);
    dc[t] += coef * dl * ac;
  }
  return value;
}

/// One row and one term of the softmax-policy losses (pll, merl, ppl): a_j = (r̂_j − λ ĉ_j)/τ, p = softmax(a),
/// value −g p_t with g = u_i v_i / N the row's gain; dL/da_j = g p_t p_j − g p_t δ_jt, added as dL/da/τ to dr and
/// −λ dL/da/τ to dc (dc may be null: cost_head calibrated drops it). m <= solver::kMaxArms. Returns the value.
template <class T>
DFCL_HD inline double softmax_policy_row(const T* r, const T* c, int64_t step, int m, int t, T lambda, T tau, T gain,
                                         T* dr, T* dc) {
  T a[solver::kMaxArms];
  T top = (r[0] - lambda * c[0]) / tau;
  for (int j = 0; j < m; ++j) {
    a[j] = (r[j * step] - lambda * c[j * step]) / tau;
    top = a[j] > top ? a[j] : top;
  }
  T z = 0;
  for (int j = 0; j < m; ++j) z += (a[j] = hd::exp(a[j] - top));
  const T gp = gain * (a[t] / z);  // g p_t
  const T inv_tau = T(1) / tau, neg_lam_tau = -lambda / tau;
  for (int j = 0; j < m; ++j) {
    const T da = gp * (a[j] / z) - (j == t ? gp : T(0));
    dr[j] += da * inv_tau;
    if (dc) dc[j] += da * neg_lam_tau;
  }
  return -double(gp);
}

/// DHCL's per-score loss l(s) = y^c g(s) − y^r s and dl/ds = y^c g'(s) − y^r on the clamped score (g = softplus,
/// as at::softplus with threshold 20, or exp); dl/ds is 0 where the clamp [−bound, bound] is active.
template <class T>
DFCL_HD inline T dhcl_score(bool sigmoid, T s_raw, T y_r, T y_c, double bound, T& grad) {
  const bool inside = s_raw >= T(-bound) && s_raw <= T(bound);
  const T s = inside ? s_raw : (s_raw < T(-bound) ? T(-bound) : T(bound));
  T g, dg;
  if (sigmoid) {
    g = s > T(20) ? s : hd::log1p(hd::exp(s));
    dg = T(1) / (T(1) + hd::exp(-s));
  } else {
    g = hd::exp(s), dg = g;
  }
  grad = inside ? y_c * dg - y_r : T(0);
  return y_c * g - y_r * s;
}

/// One row of DHCL (dhcl.cpp): the row enters step t as treated (column t, coefficient ca = w/N_t >= 0) and step t+1
/// as control (column min(t+1, m−1), coefficient cb = −w/N_t <= 0, 0 at the last arm). Adds ca l'(s_a) to dr[t] and
/// cb l'(s_b) to dr[t+1]; returns ca l(s_a) + cb l(s_b). y_r is already divided by the scale K.
template <class T>
DFCL_HD inline double dhcl_row(bool sigmoid, const T* r, int64_t step, int m, int t, T y_r, T y_c, T ca, T cb,
                               double bound, T* dr) {
  const int b = t + 1 < m ? t + 1 : m - 1;
  T ga, gb;
  const T la = dhcl_score<T>(sigmoid, r[t * step], y_r, y_c, bound, ga);
  const T lb = dhcl_score<T>(sigmoid, r[b * step], y_r, y_c, bound, gb);
  dr[t] += ca * ga;
  dr[b] += cb * gb;
  return double(ca * la) + double(cb * lb);
}

}  // namespace rows
}  // namespace dfcl::loss
