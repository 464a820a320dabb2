// \brief Second-order products of the lower level for the implicit hypergradient (spec methods-bidfcl.md §5.2–§5.3,
// §8.1): Hessian-vector products (exact, by double backward; Gauss–Newton, PSD), the target's Jacobian-vector
// product, the mixed term in closed form (one JVP of the target, one VJP of the bridge) and by double backward (its
// fallback and test oracle).
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <memory>  // for std::unique_ptr

#include "bilevel/lower_level.h"  // for LowerTargets, LowerInputs, LowerMode
#include "model/batch.h"          // for Batch

namespace dfcl::model {
class UpliftNet;
struct ForwardCache;
}  // namespace dfcl::model

namespace dfcl::bilevel {

/// The lower-level loss of one batch as a function of θ at a fixed point θ0 with fixed targets. The forward pass at θ0
/// is kept (UpliftNet::forward_train) for every product; the exact HVP's first-order graph (∇_θ L with create_graph)
/// is built on its first use and reused after.
class LowerCurvature {
 public:
  LowerCurvature(const model::UpliftNet& net, const at::Tensor& theta, const at::Tensor& x, LowerTargets targets,
                 double kappa);
  ~LowerCurvature();
  /// ∇_θ L at θ0 (no graph).
  at::Tensor gradient() const;
  /// The target's outputs ŷ(θ0) as cells, B x 2M (no graph).
  at::Tensor yhat() const { return yhat_; }
  const LowerTargets& targets() const { return targets_; }
  /// Exact Hessian-vector product ∇_θ ⟨∇_θ L, v⟩ (double backward).
  at::Tensor hvp(const at::Tensor& v) const;
  /// Gauss–Newton product 2κ Jᵀ (ω ⊙ J v): the Hessian without the residual-curvature term, PSD. One hand-written
  /// JVP and one hand-written backward (no autograd).
  at::Tensor gauss_newton(const at::Tensor& v) const;
  /// J v: the change of ŷ along v (B x 2M), by UpliftNet::jvp.
  at::Tensor jvp(const at::Tensor& v) const;

 private:
  const model::UpliftNet& net_;
  at::Tensor theta_, x_, yhat_;
  mutable at::Tensor leaf_, grad_;  // the exact HVP's graph, built on first use
  std::unique_ptr<model::ForwardCache> cache_;
  LowerTargets targets_;
  double kappa_;
};

/// The mixed term −∇_φ ⟨∇_θ L(φ, θ0), v⟩ in closed form: q = gate_cotangent(u = J v), then one backward pass through
/// the bridge (its hand-written backward when `cache` is given, else autograd). `in.gates` are the bridge's outputs at φ.
at::Tensor mixed_term(const model::UpliftNet& bridge, const at::Tensor& phi, const at::Tensor& x, LowerMode mode,
                      const LowerCurvature& lower, const LowerInputs& in, const at::Tensor& v, double kappa,
                      model::ForwardCache* cache = nullptr);

/// The same by generic double backward through the whole lower level (the gates rebuilt from φ with a graph):
/// the fallback and the test oracle of mixed_term.
at::Tensor mixed_term_autograd(const model::UpliftNet& target, const at::Tensor& theta, const model::UpliftNet& bridge,
                               const at::Tensor& phi, const model::Batch& batch, LowerMode mode,
                               const at::Tensor& teacher, const at::Tensor& snapshot, const at::Tensor& v,
                               double kappa);

/// The bridge's gates (B x 2M cells) at φ, no graph.
at::Tensor bridge_gates(const model::UpliftNet& bridge, const at::Tensor& phi, const at::Tensor& x);

}  // namespace dfcl::bilevel
