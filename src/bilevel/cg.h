// \brief Conjugate gradient for (A + δI) x = b where A is only available as a matrix-vector product (a Hessian-vector
// product), with the safeguards an indefinite neural-net Hessian needs: damping δ, a stop on non-positive curvature
// pᵀ(A + δI)p <= 0, a divergence stop, and a warm start (spec methods-bidfcl.md §5.4, Algorithm 4).
//
// Vectors are 1-D tensors of any floating dtype and device; scalars (dot products, step sizes) are kept in double.
// The iteration is deterministic: given the same products it takes the same steps on every rank.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <functional>  // for std::function

namespace dfcl::bilevel {

using MatVec = std::function<at::Tensor(const at::Tensor&)>;

struct CgOptions {
  int max_iter = 50;         // n_cg: products A p at most (the paper's 50)
  double tol = 1e-3;         // stop when ||b − (A + δI) x|| <= tol · ||b||
  double damping = 0;        // δ >= 0, added to A's diagonal (absolute; see curvature_scale for a relative one)
  double divergence = 1e6;   // stop when the residual exceeds divergence · ||b|| (or stops being finite)
};

struct CgStats {
  int iterations = 0;               // products A p taken
  double residual = 0;              // final ||b − (A + δI) x|| / ||b|| (0 when b = 0), the recursive residual
  double initial_residual = 0;      // the same at the warm start
  double damping = 0;               // δ used
  bool converged = false;           // residual <= tol
  bool negative_curvature = false;  // stopped on pᵀ(A + δI)p <= 0: x is the best iterate seen (lowest residual)
  bool diverged = false;            // stopped on a growing or non-finite residual: x is the best iterate seen
};

/// Solves (A + δI) x = b, starting from `x` (the warm start; zeros when undefined, of another shape, or when its
/// residual is no better than zero's) and leaving the solution in it. `iterations` counts products, the warm
/// start's residual included. `matvec(p)` returns A p (same shape, dtype and device as p).
CgStats conjugate_gradient(const MatVec& matvec, const at::Tensor& b, at::Tensor& x, const CgOptions& options);

/// The curvature of A along b, |bᵀAb| / bᵀb (0 when b = 0): the scale a relative damping multiplies
/// (δ = bilevel.cg.damping · scale). One product. It measures A where CG starts (along the right-hand side); the
/// spec's mean |diagonal| was measured orders of magnitude smaller on these nets (docs/methods.md).
double curvature_scale(const MatVec& matvec, const at::Tensor& b);

}  // namespace dfcl::bilevel
