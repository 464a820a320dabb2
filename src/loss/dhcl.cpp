// \brief DHCL: a loss whose minimiser is the decision factor itself, the ROI τ^r/τ^c of each treatment step
// (spec methods-dfcl-dhcl.md §5.3-5.4; the loss form is [RECON], our reconstruction, not checked against DHCL's text).
//
// Binary (M = 2): s = r_hat[:, 1], per row   l(s) = -[ (y^r/K) s - y^c softplus(s) ]          (sigmoid form)
//                                             l(s) = -(y^r/K) s + y^c exp(s)                     (exp form)
//   L = (1/N_1) Σ_{t=1} w_i l(s_i) - (1/N_0) Σ_{t=0} w_i l(s_i).
// Pointwise in x, E[L] = -(τ^r/K) s + τ^c g(s) (g = softplus or exp), minimised where K g'(s) = τ^r/τ^c: the factor
// K sigmoid(s) or K exp(s) is the ROI. (The sigmoid form is -[y^r log(q/(1-q)) + y^c log(1-q)] with q = sigmoid(s),
// computed from s with softplus so it never takes the log of a rounded q.)
// Multi-arm (M > 2): step j = 1..M-1 (arm j-1 -> j) has score r_hat[:, j], and each adjacent pair gets the binary
// loss with arm j as treated and arm j-1 as control (weights 1/N_j, 1/N_{j-1}); the pairs are summed. A row of arm j
// thus enters step j (+, column j) and step j+1 (-, column j+1).
// N_j: LossContext::arm_rows, else p_j N (LossContext::arm_propensity, N = total_weight or the batch's weight), else
// the batch's weighted counts. A pair with an empty group (N = 0) is left out: alone, either side is unbounded below.
// The coefficients are constants of the batch, so the loss is one weighted sum and its score gradient is closed-form.
#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::softplus, at::sigmoid, at::exp, Tensor::gather, torch::NoGradGuard

#include <cmath>   // for std::log, std::isfinite
#include <limits>  // for std::numeric_limits
#include <vector>  // for std::vector

#include "core/config.h"         // for Config
#include "core/error.h"          // for ConfigError, DataError
#include "loss/cuda_path.h"      // for cuda_dhcl
#include "loss/dhcl.h"           // for DhclSettings
#include "loss/factual_terms.h"  // for check_shapes
#include "loss/loss.h"           // for Loss, LossContext, DFCL_REGISTER_LOSS
#include "loss/rows.h"           // for rows::dhcl_row

namespace dfcl::loss {

DhclSettings DhclSettings::from(const Config& s) {
  DhclSettings d;
  const std::string form = s.get<std::string>("form", "sigmoid");
  if (form == "sigmoid")
    d.form = Form::kSigmoid;
  else if (form == "exp")
    d.form = Form::kExp;
  else
    throw ConfigError(fmt::format("loss.form: unknown dhcl form '{}' ({}); use sigmoid (ROI = K sigmoid(s), in (0, K)) "
                                  "or exp (ROI = K exp(s), unbounded)",
                                  form, s.origin("form")));
  d.scale = s.get<double>("scale", d.scale);
  if (!(d.scale > 0) || !std::isfinite(d.scale))
    throw ConfigError(fmt::format("loss.scale is {} ({}); K must be a finite number > 0, at least the largest ROI "
                                  "for the sigmoid form (e.g. scale: 1 when Δrevenue <= Δcost)",
                                  d.scale, s.origin("scale")));
  d.clamp = s.get<double>("clamp", d.clamp);
  const bool ok = d.form == Form::kSigmoid ? d.clamp >= 0 && d.clamp < 0.5 : d.clamp > 0 && d.clamp < 0.5;
  if (!ok)
    throw ConfigError(fmt::format("loss.clamp is {} ({}); the factor clamp ε must lie in {} (default 1e-6)", d.clamp,
                                  s.origin("clamp"), d.form == Form::kSigmoid ? "[0, 0.5)" : "(0, 0.5) for form exp"));
  return d;
}

double DhclSettings::logit_bound() const {
  if (clamp == 0) return std::numeric_limits<double>::infinity();
  return form == Form::kSigmoid ? std::log((1 - clamp) / clamp) : -std::log(clamp);
}

namespace {
at::Tensor clamped(const at::Tensor& s, double bound) { return std::isfinite(bound) ? s.clamp(-bound, bound) : s; }
}  // namespace

at::Tensor DhclSettings::factors(const at::Tensor& r_hat) const {
  torch::NoGradGuard no_grad;
  const int64_t M = r_hat.dim() == 2 ? r_hat.size(1) : 0;
  if (M < 2)
    throw DataError(fmt::format("dhcl: the factor model needs r_hat with M >= 2 columns (B x M); got {} columns", M));
  at::Tensor s = clamped(r_hat.detach().narrow(1, 1, M - 1), logit_bound());
  return (form == Form::kSigmoid ? s.sigmoid() : s.exp()).mul_(scale);
}

class Dhcl : public Loss {
 public:
  explicit Dhcl(const Config& s) : set_(DhclSettings::from(s)) {}
  std::string name() const override { return "dhcl"; }
  bool learns_factors() const override { return true; }
  /// θ = K g(clamp(r_hat[:, 1..M-1])): the learned ROI of each step.
  at::Tensor decision_factors(const at::Tensor& r_hat) const override { return set_.factors(r_hat); }

  at::Tensor compute(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const override {
    check_shapes(b, s);
    const Terms k = terms(b, s, ctx);
    const at::Tensor sa = s.r_hat.gather(1, k.ia).squeeze(1), sb = s.r_hat.gather(1, k.ib).squeeze(1);
    const double bound = set_.logit_bound();
    return (k.ca * per_row(clamped(sa, bound), k.yr, k.yc)).sum() +
           (k.cb * per_row(clamped(sb, bound), k.yr, k.yc)).sum();
  }

  // d/ds l = -y^r/K + y^c g'(s) (g' = sigmoid or exp), zero where the clamp is active (as torch's clamp backward).
  bool value_and_grad(const model::Batch& b, const model::Scores& s, const LossContext& ctx, at::Tensor& value,
                      at::Tensor& d_r, at::Tensor& d_c) const override {
    check_shapes(b, s);
    torch::NoGradGuard no_grad;
    const Terms k = terms(b, s, ctx);
    const double bound = set_.logit_bound();
    const at::ScalarType dt = s.r_hat.scalar_type();
    const bool sig = set_.form == DhclSettings::Form::kSigmoid;
    if (s.r_hat.device().is_cpu() && (dt == at::kFloat || dt == at::kDouble)) {
      // One pass over the rows through loss/rows.h's dhcl_row (the CUDA kernel's row function).
      fit(d_r, s.r_hat), fit(d_c, s.c_hat);
      const double v = dt == at::kFloat ? rows_cpu<float>(sig, s.r_hat, b.t, k, bound, d_r)
                                        : rows_cpu<double>(sig, s.r_hat, b.t, k, bound, d_r);
      value = at::scalar_tensor(v, s.r_hat.options().requires_grad(false));
      return true;
    }
    if (s.r_hat.is_cuda()) {
      fit(d_r, s.r_hat), fit(d_c, s.c_hat);
      at::Tensor acc = at::zeros({1}, s.r_hat.options().dtype(at::kDouble).requires_grad(false));
      if (cuda_dhcl(sig, s.r_hat, b.t, k.yr, k.yc, k.ca, k.cb, bound, d_r, acc)) {
        value = acc.squeeze(0).to(dt);
        return true;
      }
    }
    at::Tensor ga, gb;
    const at::Tensor la = row_value_and_grad(s.r_hat.detach().gather(1, k.ia).squeeze(1), k, bound, ga);
    const at::Tensor lb = row_value_and_grad(s.r_hat.detach().gather(1, k.ib).squeeze(1), k, bound, gb);
    value = at::dot(k.ca, la) + at::dot(k.cb, lb);
    fit(d_r, s.r_hat), fit(d_c, s.c_hat);
    d_r.scatter_add_(1, k.ia, (k.ca * ga).unsqueeze(1)).scatter_add_(1, k.ib, (k.cb * gb).unsqueeze(1));
    return true;
  }

 private:
  // Per row: the two score columns it enters (ia: its own arm's step, as treated; ib: the next step, as control) and
  // their coefficients (ca = w_i / N_{t_i} >= 0, cb = -w_i / N_{t_i} <= 0; 0 where the step does not exist or its pair
  // has an empty group), plus the labels in the scores' dtype. No graph.
  struct Terms {
    at::Tensor ia, ib, ca, cb, yr, yc;
  };

  Terms terms(const model::Batch& b, const model::Scores& s, const LossContext& ctx) const {
    torch::NoGradGuard no_grad;
    const int64_t M = s.r_hat.size(1);
    if (M < 2)
      throw DataError(fmt::format("loss dhcl: needs at least 2 arms (control plus one treatment); the scores have {}",
                                  M));
    const auto opts = s.r_hat.options().requires_grad(false);
    const at::Tensor n = group_rows(b, s, ctx);
    const at::Tensor inv = n.reciprocal().masked_fill_(n.le(0), 0);
    // Pair j (arm j vs j-1), j = 1..M-1, counts only when both groups have rows.
    const at::Tensor pair = n.narrow(0, 1, M - 1).gt(0).logical_and(n.narrow(0, 0, M - 1).gt(0)).to(opts.dtype());
    at::Tensor treat = at::zeros({M}, opts), ctrl = at::zeros({M}, opts);
    treat.narrow(0, 1, M - 1).copy_(pair * inv.narrow(0, 1, M - 1));
    ctrl.narrow(0, 0, M - 1).copy_(pair * inv.narrow(0, 0, M - 1));
    const at::Tensor w = b.weight.to(opts.dtype());
    Terms k;
    k.ia = b.t.unsqueeze(1);
    k.ib = (b.t + 1).clamp_max(M - 1).unsqueeze(1);
    k.ca = w * treat.index_select(0, b.t);
    k.cb = -(w * ctrl.index_select(0, b.t));
    k.yr = b.y_r.to(opts.dtype()).div(set_.scale);
    k.yc = b.y_c.to(opts.dtype());
    return k;
  }

  // N_j per arm (M), in the scores' dtype and device.
  static at::Tensor group_rows(const model::Batch& b, const model::Scores& s, const LossContext& ctx) {
    const int64_t M = s.r_hat.size(1);
    const auto opts = s.r_hat.options().requires_grad(false);
    const auto from_host = [&](const std::vector<double>& v, const char* what) {
      if (static_cast<int64_t>(v.size()) != M)
        throw DataError(fmt::format("loss dhcl: LossContext::{} has {} values for {} arms", what, v.size(), M));
      for (double x : v)
        if (!(x >= 0) || !std::isfinite(x))
          throw DataError(fmt::format("loss dhcl: LossContext::{} holds {}; values must be finite and >= 0", what, x));
      return at::tensor(v, at::TensorOptions().dtype(at::kDouble)).to(opts.device(), opts.dtype().toScalarType());
    };
    if (!ctx.arm_rows.empty()) return from_host(ctx.arm_rows, "arm_rows");
    if (!ctx.arm_propensity.empty()) {
      at::Tensor n = from_host(ctx.arm_propensity, "arm_propensity");
      return n.mul_(ctx.total_weight > 0 ? ctx.total_weight : b.weight.to(at::kDouble).sum().item<double>());
    }
    return at::zeros({M}, opts).index_add_(0, b.t, b.weight.to(opts.dtype()));
  }

  // l(s) per row, differentiable (s already clamped).
  at::Tensor per_row(const at::Tensor& s, const at::Tensor& yr, const at::Tensor& yc) const {
    const at::Tensor g = set_.form == DhclSettings::Form::kSigmoid ? at::softplus(s) : at::exp(s);
    return yc * g - yr * s;
  }

  // l(s) and dl/ds per row, no graph; the derivative is 0 where the clamp is active.
  at::Tensor row_value_and_grad(const at::Tensor& s_raw, const Terms& k, double bound, at::Tensor& grad) const {
    const at::Tensor s = clamped(s_raw, bound);
    at::Tensor g, dg;
    if (set_.form == DhclSettings::Form::kSigmoid) {
      g = at::softplus(s), dg = at::sigmoid(s);
    } else {
      g = at::exp(s), dg = g;
    }
    grad = k.yc * dg - k.yr;
    if (std::isfinite(bound)) grad.mul_(s_raw.ge(-bound).logical_and(s_raw.le(bound)));
    return k.yc * g - k.yr * s;
  }

  template <class T>
  static double rows_cpu(bool sigmoid, const at::Tensor& r_hat, const at::Tensor& t_in, const Terms& k, double bound,
                         at::Tensor& d_r) {
    const at::Tensor r = r_hat.stride(1) == 1 ? r_hat : r_hat.contiguous();
    const at::Tensor t = t_in.contiguous(), yr = k.yr.contiguous(), yc = k.yc.contiguous(), ca = k.ca.contiguous(),
                     cb = k.cb.contiguous();
    const int64_t B = r.size(0), rs = r.stride(0);
    const int M = int(r.size(1));
    const T *R = r.data_ptr<T>(), *YR = yr.data_ptr<T>(), *YC = yc.data_ptr<T>(), *CA = ca.data_ptr<T>(),
            *CB = cb.data_ptr<T>();
    const int64_t* tt = t.data_ptr<int64_t>();
    T* dr = d_r.data_ptr<T>();
    double v = 0;
    for (int64_t i = 0; i < B; ++i)
      v += rows::dhcl_row<T>(sigmoid, R + i * rs, 1, M, int(tt[i]), YR[i], YC[i], CA[i], CB[i], bound, dr + i * M);
    return v;
  }

  static void fit(at::Tensor& d, const at::Tensor& like) {
    if (!d.defined() || d.sizes() != like.sizes() || d.scalar_type() != like.scalar_type() ||
        d.device() != like.device())
      d = at::zeros_like(like, like.options().requires_grad(false));
    else
      d.zero_();
  }

  DhclSettings set_;
};

}  // namespace dfcl::loss

DFCL_REGISTER_LOSS(Dhcl, "dhcl")
