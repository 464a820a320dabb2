// \brief The improved-finite-difference (IFD) gradient estimator shared by ifd, ifd_softmax and pifd: minimal flipping
// perturbations of the per-user argmax policy, the change ΔQ of the batch objective when one user flips, and the
// gradient estimate G = ΔQ / δ (spec methods-dfcl-dhcl.md §3.7.3, methods-bidfcl.md §3.4-3.5).
//
// At fixed λ the policy π_i = argmax_j a_ij, a = r̂ − λ ĉ, is separable: perturbing row i moves only row i's decision,
// so Q after the flip is an O(1) update of the batch aggregate. With u_i the IPW row weight, S+ = {i : π_i = t_i}:
//   objective:  dual   Q = rbar − λ cbar   (DFCL-IFD, ifd_softmax; Bi-DFCL's DIFD)
//               primal Q = rbar            (Bi-DFCL's PIFD at λ*; revenue only, like the primal decision loss)
//   normalisation self (Hajek; the DFCL reference code): rbar = Σ_{S+} u y^r / W, cbar = Σ_{S+} u y^c / W,
//                 W = Σ_{S+} u (all three summed over the global batch through LossContext::reduce_sum);
//                 ΔQ_i = s_i u_i [(y^r_i − rbar) − κ (y^c_i − cbar)] / (W + s_i u_i),  s_i = −1 on S+, +1 on S−
//                 (κ = λ dual, 0 primal; algebraically the spec's Q2_i − Q1, without the cancellation).
//                 Guards: W + s_i u_i <= 0 (row i is the only matched row, or a padding row with W = 0): ΔQ_i = 0.
//                 No matched row: rbar = cbar = 0 and W = 0, so a flip into S+ gives ΔQ_i = y^r_i − κ y^c_i.
//   normalisation ht (Horvitz-Thompson; the papers): ΔQ_i = s_i u_i (y^r_i − κ y^c_i) / N, N the global batch weight.
// Padding rows (u_i = 0) get no perturbation and G = 0.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <string>  // for std::string

#include "loss/loss.h"    // for LossContext
#include "model/batch.h"  // for Batch

namespace dfcl {
class Config;
}

namespace dfcl::loss {

enum class IfdNormalisation { kSelf, kHt };
/// What happens to a perturbation δ before G = ΔQ / δ (each perturbation matrix separately):
///   none: δ as is;  fix: 0 < |δ| < h becomes sign(δ) h, every other entry gets G = 0 (the reference code);
///   floor: |δ| < h becomes sign(δ) h, larger ones stay (Bi-DFCL spec's pifd_clip floor);
///   max: every non-zero δ becomes sign(δ) max|δ|, the max over the global batch (LossContext::reduce_max).
enum class IfdClip { kNone, kFix, kFloor, kMax };
enum class IfdObjective { kDual, kPrimal };
/// revenue_cost: DFCL's Algorithm 2, separate perturbations δ^r of r̂ and δ^c of ĉ on two entries per row (t_i and,
/// for S+, the runner-up k_i; for S−, the current arm π_i). score: Bi-DFCL's Algorithms 3/5, one perturbation h of the
/// score a on t_i and, for S+, every other arm; for S−, π_i.
enum class IfdPerturbation { kRevenueCost, kScore };

/// The estimator's keys (read by IfdOptions::from from the loss section).
struct IfdOptions {
  IfdNormalisation normalisation = IfdNormalisation::kHt;
  IfdClip clip = IfdClip::kFix;
  double h = 0.3;      // clip threshold (fix, floor)
  double eps0 = 1e-6;  // the strict-flip offset added to every minimal perturbation
  /// false (the spec): an S− row perturbs its current arm π_i by −(gap + eps0) whatever its other arms; true: only when
  /// t_i is the runner-up of row i, the one case where that perturbation alone flips the row into S+ (always, M = 2).
  bool strict_flips = false;
  /// Keys normalisation (self | ht), clip (none | fix | floor | max), h (> 0), eps0 (> 0), strict_flips (bool), each
  /// defaulting to `defaults`' value. Throws ConfigError naming loss.<key>.
  static IfdOptions from(const Config& section, const IfdOptions& defaults);
  /// The defaults of a DecisionSettings preset: reference (the DFCL reference code) → self, paper and none → ht;
  /// clip fix, h 0.3, eps0 1e-6, strict_flips false in all.
  static IfdOptions preset(const std::string& preset);
  static std::string normalisation_name(IfdNormalisation n);
  static std::string clip_name(IfdClip c);
};

/// The estimate at one λ. All tensors float64 on the scores' device, no graph; B x M unless noted.
struct IfdEstimate {
  at::Tensor matched;  // B bool: π_i == t_i (S+)
  at::Tensor dq;       // B: ΔQ_i, the change of Q when row i flips (0 for padding rows and the guards above)
  /// revenue_cost: the clipped perturbations of r̂ (delta_r) and ĉ (delta_c) and G^r = ΔQ/δ^r, G^c = ΔQ/δ^c on the
  /// entries that pass the clip (0 elsewhere). score: delta_s and g_s (G^s = ΔQ/h) for the score a; the others
  /// undefined. A delta entry is the perturbation the finite difference used; it is non-zero exactly where G may be
  /// non-zero.
  at::Tensor delta_r, delta_c, g_r, g_c;
  at::Tensor delta_s, g_s;
};

/// The IFD estimate for the batch at λ (> 0 for revenue_cost perturbations, which divide by λ; >= 0 for score).
/// r_hat, c_hat: the scores (any float dtype; detached and promoted to float64 here); u: the row weights (B; e.g.
/// row_weights()). Reductions: ht reads the global batch weight (batch_total); self reduces (W, Σ u y^r, Σ u y^c) with
/// ctx.reduce_sum; clip max reduces the maxima with ctx.reduce_max. Every rank makes the same reduction calls.
/// Throws DataError for fewer than 2 arms. CPU scores (float or double, up to 64 arms) go through loss/ifd_rows.h's row
/// functions, the CUDA kernels' row math (ties: the lowest-index arm); other scores through detail::ifd_estimate_ops.
IfdEstimate ifd_estimate(const at::Tensor& r_hat, const at::Tensor& c_hat, const model::Batch& batch,
                         const at::Tensor& u, const LossContext& ctx, double lambda, IfdObjective objective,
                         IfdPerturbation perturbation, const IfdOptions& options);

namespace detail {
/// The same estimate through ATen ops (any device; ties as at::topk breaks them): the path for scores off the CPU
/// without a kernel, and the CPU row path's test oracle. ifd_estimate checks the arguments before either.
IfdEstimate ifd_estimate_ops(const at::Tensor& r_hat, const at::Tensor& c_hat, const model::Batch& batch,
                             const at::Tensor& u, const LossContext& ctx, double lambda, IfdObjective objective,
                             IfdPerturbation perturbation, const IfdOptions& options);
}  // namespace detail

/// The softmax node of ifd_softmax and pifd (node: softmax): L = −Σ_ij G_ij softmax(a_i / τ)_j with G detached and
/// a = r̂ − λ ĉ (differentiable in the scores).
at::Tensor softmax_node(const at::Tensor& g, const at::Tensor& r_hat, const at::Tensor& c_hat, double lambda,
                        double tau);
/// Its value (0-dim, float64) and score gradient added into d_r, d_c: with q = softmax(a_i / τ),
/// dL/da_ik = −(1/τ) q_ik (G_ik − Σ_j G_ij q_ij), dL/dr̂ = dL/da, dL/dĉ = −λ dL/da.
at::Tensor softmax_node_grad(const at::Tensor& g, const at::Tensor& r_hat, const at::Tensor& c_hat, double lambda,
                             double tau, at::Tensor& d_r, at::Tensor& d_c);

}  // namespace dfcl::loss
