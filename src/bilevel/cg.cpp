// \brief Conjugate gradient with damping, a negative-curvature stop, a divergence stop and a warm start (cg.h).
#include "bilevel/cg.h"

#include "bilevel/cg_rows.h"  // for rows::cg_update, rows::cg_direction

#include <torch/torch.h>  // for at::zeros_like, torch::NoGradGuard

#include <cmath>    // for std::sqrt, std::isfinite
#include <cstdint>  // for int64_t


namespace dfcl::bilevel {

namespace {
double ddot(const at::Tensor& a, const at::Tensor& b) {
  return at::dot(a.to(at::kDouble), b.to(at::kDouble)).item<double>();
}

// The fused elementwise part (bilevel/cg_rows.h, the CUDA kernel's row functions) on contiguous CPU vectors of one
// float dtype; ATen ops elsewhere.
bool fused(const at::Tensor& a, const at::Tensor& b) {
  return a.device().is_cpu() && b.device().is_cpu() && a.scalar_type() == b.scalar_type() && a.is_contiguous() &&
         b.is_contiguous() && (a.scalar_type() == at::kFloat || a.scalar_type() == at::kDouble);
}

template <class T>
double update_cpu(double alpha, const at::Tensor& p, const at::Tensor& ap, at::Tensor& x, at::Tensor& r) {
  const T *pp = p.data_ptr<T>(), *a = ap.data_ptr<T>();
  T *xp = x.data_ptr<T>(), *rp = r.data_ptr<T>();
  double rr = 0;
  for (int64_t i = 0, n = p.numel(); i < n; ++i) rr += rows::cg_update<T>(T(alpha), pp[i], a[i], xp[i], rp[i]);
  return rr;
}

// x += α p, r −= α Ap; returns r·r (double).
double update(double alpha, const at::Tensor& p, const at::Tensor& ap, at::Tensor& x, at::Tensor& r) {
  if (fused(p, ap) && fused(x, r) && p.scalar_type() == x.scalar_type())
    return p.scalar_type() == at::kFloat ? update_cpu<float>(alpha, p, ap, x, r)
                                         : update_cpu<double>(alpha, p, ap, x, r);
  x.add_(p, alpha);
  r.sub_(ap, alpha);
  return ddot(r, r);
}

// p = r + β p.
void direction(double beta, const at::Tensor& r, at::Tensor& p) {
  if (fused(r, p)) {
    if (p.scalar_type() == at::kFloat) {
      const float* rp = r.data_ptr<float>();
      float* pp = p.data_ptr<float>();
      for (int64_t i = 0, n = p.numel(); i < n; ++i) rows::cg_direction<float>(float(beta), rp[i], pp[i]);
    } else {
      const double* rp = r.data_ptr<double>();
      double* pp = p.data_ptr<double>();
      for (int64_t i = 0, n = p.numel(); i < n; ++i) rows::cg_direction<double>(beta, rp[i], pp[i]);
    }
    return;
  }
  p = r + beta * p;
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
    const double rr_new = update(alpha, p, ap, x, r);
    s.residual = std::sqrt(rr_new) / bnorm;
    if (!std::isfinite(rr_new) || s.residual > o.divergence) {
      s.diverged = true;
      break;
    }
    if (s.residual < best_res) best_res = s.residual, best.copy_(x);
    direction(rr_new / rr, r, p);
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
