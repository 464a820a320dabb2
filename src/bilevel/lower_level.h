// \brief Bi-DFCL's lower level on the observational log (spec methods-bidfcl.md §4.3–§4.4, §5.3): the per-cell targets
// and weights of the masked MSE, its value and closed-form score gradient, and the closed-form cotangent of the
// bridge gates that the hypergradient's mixed term needs.
//
// Cells: a row's 2M outputs, revenue of arms 0..M-1 then cost of arms 0..M-1 (the UpliftNet head order). With κ the
// normaliser (1 / (N M), N the global batch's weight) and ω, y the per-cell weight and target,
//
//   L(θ) = κ Σ_cells ω (ŷ(θ) − y)²,    ∂L/∂ŷ = 2κ ω (ŷ − y).
//
//   counterfactual (the paper's Bi-DFCL): the factual cell (j = t_i) of each outcome has the logged label; every other
//     cell the pseudo-label y = w·teacher + (1 − w)·snapshot, where w ∈ (0, 1) is the bridge's gate for that cell and
//     the snapshot is the target's own output before the step (detached); ω = the row weight everywhere.
//   factual_weights (ablation "no counterfactual labels", Table 3 row 3): only the factual cells, each weighted by
//     2·w (the gate of that cell, so weights start near 1), an adaptive per-sample IPW; y = the logged label.
//
// The mixed term. With u = J v (the target's JVP along the CG solution v, per cell),
//   −∇_φ ⟨∇_θ L, v⟩ = J_w(φ)ᵀ q,   q = −∂/∂w (2κ Σ ω (ŷ − y) u)
//   counterfactual:   q = 2κ ω u (teacher − snapshot) on counterfactual cells, 0 on factual ones;
//   factual_weights:  q = −4κ weight (ŷ − y) u on factual cells, 0 elsewhere.
// q is the cotangent of the bridge's outputs; one backward pass through the bridge turns it into the hypergradient.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <string>  // for std::string

#include "model/batch.h"  // for Batch

namespace dfcl::bilevel {

enum class LowerMode { kCounterfactual, kFactualWeights };
LowerMode lower_mode_from(const std::string& name);  // "counterfactual" | "factual_weights"; ConfigError otherwise
std::string to_string(LowerMode mode);

/// The tensors of one batch the lower level reads besides the target's own outputs, all B x 2M in the batch's dtype:
/// teacher and snapshot outputs (no graph) and the bridge gates w (a graph to φ only when the caller wants one).
struct LowerInputs {
  at::Tensor teacher, snapshot, gates;
};

/// Per-cell targets y and weights ω (B x 2M). Differentiable in `in.gates` (the double-backward oracle uses that).
struct LowerTargets {
  at::Tensor y, omega;
  at::Tensor factual;  // B x 2M, 1 on the factual cells (both outcomes), 0 elsewhere
  at::Tensor weight;   // B x 1, the row weights (0 for padding)
};
LowerTargets lower_targets(LowerMode mode, const model::Batch& batch, const LowerInputs& in);

/// The predictions as cells: [r_hat | c_hat] (B x 2M).
at::Tensor cells(const at::Tensor& r_hat, const at::Tensor& c_hat);

/// κ Σ ω (ŷ − y)² as a differentiable scalar (in ŷ, and in y, ω when they carry a graph).
at::Tensor lower_loss(const at::Tensor& yhat, const LowerTargets& t, double kappa);
/// The same value (a double) and ∂L/∂ŷ = 2κ ω (ŷ − y), split into the revenue and cost halves (B x M each), no graph.
double lower_value_and_grad(const at::Tensor& yhat, const LowerTargets& t, double kappa, at::Tensor& d_r,
                            at::Tensor& d_c);
/// The bridge-output cotangent q of the mixed term (see above) from u = J v (B x 2M), no graph.
at::Tensor gate_cotangent(LowerMode mode, const at::Tensor& yhat, const LowerTargets& t, const LowerInputs& in,
                          const at::Tensor& u, double kappa);

}  // namespace dfcl::bilevel
