// \brief The lower level's per-cell math (lower_level.h), torch-free: the masked MSE's value share and score gradient,
// and the mixed term's gate cotangent. lower_level.cpp runs them over CPU tensors and cuda/lower_kernels.cu over device
// arrays, the same arithmetic on both. A cell is one of a row's 2M outputs (revenue of arms 0..M-1, then cost).
#pragma once
#include "core/host_device.h"  // for DFCL_HD

namespace dfcl::bilevel::rows {

/// κ ω (ŷ − y)², the cell's share of the lower loss; d = ∂L/∂ŷ = 2κ ω (ŷ − y).
template <class T>
DFCL_HD inline double lower_cell(T yhat, T y, T omega, T kappa, T& d) {
  const T we = omega * (yhat - y);
  d = (2 * kappa) * we;
  return double(kappa) * double(we * (yhat - y));
}

/// The bridge-output cotangent q of one cell (lower_level.h): counterfactual: 2κ ω u (teacher − snapshot) on a
/// counterfactual cell, 0 on a factual one; factual_weights: −4κ weight (ŷ − y) u on a factual cell, 0 elsewhere.
template <class T>
DFCL_HD inline T gate_cotangent_cell(bool counterfactual, bool factual, T yhat, T y, T omega, T weight, T u, T teacher,
                                     T snapshot, T kappa) {
  if (counterfactual) return factual ? T(0) : (2 * kappa) * omega * u * (teacher - snapshot);
  return factual ? (-4 * kappa) * weight * (yhat - y) * u : T(0);
}

}  // namespace dfcl::bilevel::rows
