// \brief Conjugate gradient with damping, a negative-curvature stop, a divergence stop and a warm start (cg.h).
#include "bilevel/cg.h"

#include <torch/torch.h>  // for at::zeros_like, torch::NoGradGuard

#include <cmath>    // for std::sqrt, std::isfinite
#include <cstdint>  // for int64_t


namespace dfcl::bilevel {

namespace {
double ddot(const at::Tensor& a, const at::Tensor& b) {
  return at::dot(a.to(at::kDouble), b.to(at::kDouble)).item<double>();
}
}  // namespace

CgStats conjugate_gradient(const MatVec& matvec, const at::Tensor& b, at::Tensor& x, const CgOptions& o) {
  torch::NoGradGuard no_grad;
  CgStats s;
  s.damping = o.damping;
  if (!x.defined() || x.sizes() != b.sizes() || x.scalar_type() != b.scalar_type() || x.device() != b.device())
    x = at::zeros_like(b);
  const double bnorm = std::sqrt(ddot(b, b));
  if (bnorm == 0) {
    x.zero_();
    s.converged = true;
    return s;
  }
  auto apply = [&](const at::Tensor& p) {
    at::Tensor ap = matvec(p);
    if (o.damping != 0) ap = ap + o.damping * p;
    return ap;
  };
  at::Tensor r = b.clone();
  if (ddot(x, x) > 0) {
    r = b - apply(x), ++s.iterations;
    s.initial_residual = std::sqrt(ddot(r, r)) / bnorm;
    if (!(s.initial_residual < 1)) x.zero_(), r = b.clone();  // a warm start worse than zero (or not finite): drop it
  }
  double rr = ddot(r, r);
  s.residual = std::sqrt(rr) / bnorm;
  if (s.initial_residual == 0) s.initial_residual = s.residual;
  at::Tensor best = x.clone();
  double best_res = s.residual;
  at::Tensor p = r.clone();
  while (s.residual > o.tol && s.iterations < o.max_iter) {
    const at::Tensor ap = apply(p);
    ++s.iterations;
    const double pap = ddot(p, ap);
    if (!(pap > 0)) {  // non-positive (or NaN) curvature along p: the quadratic model has no minimum there
      s.negative_curvature = std::isfinite(pap);
      s.diverged = !std::isfinite(pap);
      break;
    }
    const double alpha = rr / pap;
    x.add_(p, alpha);
    r.sub_(ap, alpha);
    const double rr_new = ddot(r, r);
    s.residual = std::sqrt(rr_new) / bnorm;
    if (!std::isfinite(rr_new) || s.residual > o.divergence) {
      s.diverged = true;
      break;
    }
    if (s.residual < best_res) best_res = s.residual, best.copy_(x);
    p = r + (rr_new / rr) * p;
    rr = rr_new;
  }
  // An early stop keeps the best iterate seen (the residual is not monotone in CG, and after a bad direction the last
  // iterate can be far worse than an earlier one).
  if (s.diverged || s.negative_curvature) x.copy_(best), s.residual = best_res;
  s.converged = s.residual <= o.tol;
  return s;
}

double curvature_scale(const MatVec& matvec, const at::Tensor& b) {
  torch::NoGradGuard no_grad;
  const double bb = ddot(b, b);
  if (!(bb > 0)) return 0.0;
  const double q = ddot(b, matvec(b));
  return std::isfinite(q) ? std::abs(q) / bb : 0.0;
}

}  // namespace dfcl::bilevel
