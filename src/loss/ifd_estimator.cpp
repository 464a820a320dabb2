// \brief The IFD estimator: minimal flipping perturbations, ΔQ per row (self-normalised or Horvitz-Thompson), clipping,
// G = ΔQ / δ; and the softmax node the score-perturbation losses attach G to. ATen ops only (CPU and CUDA).
#include "loss/ifd_estimator.h"

#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::where, at::topk, at::softmax, torch::NoGradGuard

#include <algorithm>  // for std::max
#include <cmath>   // for std::isfinite, std::abs
#include <tuple>   // for std::get
#include <vector>  // for std::vector

#include "core/config.h"    // for Config
#include "core/error.h"     // for ConfigError, DataError
#include "loss/decision.h"  // for batch_total
#include "loss/ifd_rows.h"  // for rows::ifd_row_state, ifd_row_dq, ifd_row_deltas, ifd_clip

#ifdef DFCL_HAVE_CUDA
#include <stdexcept>  // for std::runtime_error
#include <string>     // for std::string

#include "cuda/ifd_kernels.h"  // for ifd_estimate (device arrays)
#endif

namespace dfcl::loss {

namespace {
at::Tensor keep(const at::Tensor& x, const at::Tensor& mask) { return at::where(mask, x, at::zeros_like(x)); }

// The clipped perturbation (0 where the entry gives no gradient) and the mask of entries that give one.
struct Clipped {
  at::Tensor delta, mask;
};
Clipped clip_delta(const at::Tensor& d, IfdClip clip, double h, double global_max) {
  const at::Tensor nz = d.ne(0), mag = d.abs(), sgn = d.sign();
  Clipped out;
  switch (clip) {
    case IfdClip::kNone:
      out.mask = nz, out.delta = d;
      break;
    case IfdClip::kFix:
      out.mask = nz.logical_and(mag.lt(h)), out.delta = sgn * h;
      break;
    case IfdClip::kFloor:
      out.mask = nz, out.delta = sgn * mag.clamp_min(h);
      break;
    case IfdClip::kMax:
      out.mask = nz, out.delta = sgn * global_max;
      break;
  }
  out.delta = keep(out.delta, out.mask);
  return out;
}

// G = ΔQ_i / δ on the clip mask, 0 elsewhere (no division by a zero δ).
at::Tensor gradient(const at::Tensor& dq, const Clipped& c) {
  const at::Tensor denom = at::where(c.mask, c.delta, at::ones_like(c.delta));
  return keep(dq.unsqueeze(1) / denom, c.mask);
}

double local_abs_max(const at::Tensor& d) { return d.numel() > 0 ? d.abs().max().item<double>() : 0.0; }
}  // namespace

std::string IfdOptions::normalisation_name(IfdNormalisation n) { return n == IfdNormalisation::kSelf ? "self" : "ht"; }

std::string IfdOptions::clip_name(IfdClip c) {
  switch (c) {
    case IfdClip::kNone:
      return "none";
    case IfdClip::kFix:
      return "fix";
    case IfdClip::kFloor:
      return "floor";
    case IfdClip::kMax:
      return "max";
  }
  return "?";
}

IfdOptions IfdOptions::preset(const std::string& preset) {
  IfdOptions o;
  o.normalisation = preset == "reference" ? IfdNormalisation::kSelf : IfdNormalisation::kHt;
  return o;
}

IfdOptions IfdOptions::from(const Config& s, const IfdOptions& defaults) {
  IfdOptions o = defaults;
  const std::string norm = s.get<std::string>("normalisation", normalisation_name(defaults.normalisation));
  if (norm == "self")
    o.normalisation = IfdNormalisation::kSelf;
  else if (norm == "ht")
    o.normalisation = IfdNormalisation::kHt;
  else
    throw ConfigError(
        fmt::format("loss.normalisation is '{}' ({}); use self (Hajek: the matched rows' IPW mean, the "
                    "DFCL reference code) or ht (Horvitz-Thompson: divide by the batch weight N, the "
                    "papers)",
                    norm, s.origin("normalisation")));
  const std::string clip = s.get<std::string>("clip", clip_name(defaults.clip));
  if (clip == "none")
    o.clip = IfdClip::kNone;
  else if (clip == "fix")
    o.clip = IfdClip::kFix;
  else if (clip == "floor")
    o.clip = IfdClip::kFloor;
  else if (clip == "max")
    o.clip = IfdClip::kMax;
  else
    throw ConfigError(
        fmt::format("loss.clip is '{}' ({}); use fix (|δ| < h becomes h, the rest get no gradient; the "
                    "reference code), floor (|δ| < h becomes h), max (every δ becomes the batch's "
                    "largest) or none",
                    clip, s.origin("clip")));
  o.h = s.get<double>("h", defaults.h);
  if (!(o.h > 0) || !std::isfinite(o.h))
    throw ConfigError(
        fmt::format("loss.h is {}; the clip threshold must be a finite number > 0 in score units (the "
                    "reference code: 0.3)",
                    o.h));
  o.eps0 = s.get<double>("eps0", defaults.eps0);
  if (!(o.eps0 > 0) || !std::isfinite(o.eps0))
    throw ConfigError(
        fmt::format("loss.eps0 is {}; the strict-flip offset must be a finite number > 0 (default 1e-6)", o.eps0));
  o.strict_flips = s.get<bool>("strict_flips", defaults.strict_flips);
  return o;
}

namespace {
// The settings the row functions read.
rows::IfdRowSettings row_settings(double lambda, IfdObjective objective, IfdPerturbation perturbation,
                                  const IfdOptions& o) {
  rows::IfdRowSettings st;
  st.lambda = lambda, st.kappa = objective == IfdObjective::kDual ? lambda : 0.0;
  st.score = perturbation == IfdPerturbation::kScore, st.self = o.normalisation == IfdNormalisation::kSelf;
  st.strict_flips = o.strict_flips, st.eps0 = o.eps0, st.clip = int(o.clip), st.h = o.h;
  return st;
}


// The CPU path: loss/ifd_rows.h's row functions in three passes over the rows (the CUDA kernels' row math).
template <class T>
IfdEstimate estimate_rows(const at::Tensor& r_hat, const at::Tensor& c_hat, const model::Batch& b,
                          const at::Tensor& u_in, const LossContext& ctx, double lambda, IfdObjective objective,
                          IfdPerturbation perturbation, const IfdOptions& o) {
  const at::Tensor r = r_hat.detach().contiguous(), c = c_hat.detach().contiguous();
  const at::Tensor t_c = b.t.to(at::kCPU, at::kLong).contiguous();
  const at::Tensor u_c = u_in.detach().to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor yr_c = b.y_r.to(at::kCPU, at::kDouble).contiguous(), yc_c = b.y_c.to(at::kCPU, at::kDouble).contiguous();
  const int64_t B = r.size(0);
  const int M = int(r.size(1));
  const T *R = r.data_ptr<T>(), *C = c.data_ptr<T>();
  const int64_t* tt = t_c.data_ptr<int64_t>();
  const double *U = u_c.data_ptr<double>(), *YR = yr_c.data_ptr<double>(), *YC = yc_c.data_ptr<double>();
  rows::IfdRowSettings st = row_settings(lambda, objective, perturbation, o);
  const auto opt = at::TensorOptions().dtype(at::kDouble);
  IfdEstimate e;
  e.matched = at::empty({B}, at::TensorOptions().dtype(at::kBool));
  e.dq = at::empty({B}, opt);
  bool* mt = e.matched.data_ptr<bool>();
  double* dq = e.dq.data_ptr<double>();
  rows::IfdRowState state;  // recomputed per row in each pass (M operations), as the kernels do, rather than stored

  // Pass 1: each row's policy, and the matched rows' sums (self).
  std::vector<double> sums(3, 0.0);
  for (int64_t i = 0; i < B; ++i) {
    rows::ifd_row_state(R + i * M, C + i * M, 1, M, int(tt[i]), lambda, state);
    mt[i] = state.matched;
    if (mt[i]) sums[0] += U[i], sums[1] += U[i] * YR[i], sums[2] += U[i] * YC[i];
  }
  if (st.self) {
    if (ctx.reduce_sum) ctx.reduce_sum(sums);
    st.w = sums[0], st.rbar = sums[0] > 0 ? sums[1] / sums[0] : 0.0, st.cbar = sums[0] > 0 ? sums[2] / sums[0] : 0.0;
  } else {
    st.n = batch_total(b, ctx);
  }

  // Pass 2: ΔQ and the unclipped perturbations, with each matrix's max |δ| (clip max).
  const int width = st.score ? M : 4;
  std::vector<double> raw(size_t(B) * width);
  std::vector<int> other(size_t(B), 0);
  std::vector<double> maxima(st.score ? 1 : 2, 0.0);
  for (int64_t i = 0; i < B; ++i) {
    rows::ifd_row_state(R + i * M, C + i * M, 1, M, int(tt[i]), lambda, state);
    dq[i] = rows::ifd_row_dq(state, U[i], YR[i], YC[i], st);
    double* d = &raw[size_t(i) * width];
    rows::ifd_row_deltas(state, M, int(tt[i]), U[i], st, d, &other[size_t(i)]);
    for (int j = 0; j < width; ++j) {
      double& mx = maxima[st.score ? 0 : size_t(j / 2)];
      mx = std::max(mx, std::abs(d[j]));
    }
  }
  if (o.clip == IfdClip::kMax && ctx.reduce_max) ctx.reduce_max(maxima);

  // Pass 3: the clip and G = ΔQ / δ, into B x M tables.
  at::Tensor d1 = at::zeros({B, M}, opt), g1 = at::zeros({B, M}, opt);
  at::Tensor d2 = st.score ? at::Tensor() : at::zeros({B, M}, opt), g2 = st.score ? at::Tensor() : at::zeros({B, M}, opt);
  double *D1 = d1.data_ptr<double>(), *G1 = g1.data_ptr<double>();
  double *D2 = st.score ? nullptr : d2.data_ptr<double>(), *G2 = st.score ? nullptr : g2.data_ptr<double>();
  for (int64_t i = 0; i < B; ++i) {
    const double* d = &raw[size_t(i) * width];
    if (st.score) {
      for (int j = 0; j < M; ++j) rows::ifd_clip(d[j], dq[i], st, maxima[0], D1[i * M + j], G1[i * M + j]);
      continue;
    }
    const int cols[2] = {int(tt[i]), other[size_t(i)]};
    for (int q = 0; q < 2; ++q) {
      rows::ifd_clip(d[q], dq[i], st, maxima[0], D1[i * M + cols[q]], G1[i * M + cols[q]]);
      rows::ifd_clip(d[2 + q], dq[i], st, maxima[1], D2[i * M + cols[q]], G2[i * M + cols[q]]);
    }
  }
  if (st.score)
    e.delta_s = d1, e.g_s = g1;
  else
    e.delta_r = d1, e.g_r = g1, e.delta_c = d2, e.g_c = g2;
  return e;
}

#ifdef DFCL_HAVE_CUDA
// The device path (cuda/ifd_kernels.h, the same row functions), for CUDA scores.
template <class T>
IfdEstimate estimate_cuda(const at::Tensor& r_hat, const at::Tensor& c_hat, const model::Batch& b,
                          const at::Tensor& u_in, const LossContext& ctx, double lambda, IfdObjective objective,
                          IfdPerturbation perturbation, const IfdOptions& o) {
  const at::Tensor r = r_hat.detach().contiguous(), c = c_hat.detach().contiguous();
  const auto dev = r.device();
  const at::Tensor t = b.t.to(dev, at::kLong).contiguous(), u = u_in.detach().to(dev, at::kDouble).contiguous();
  const at::Tensor yr = b.y_r.to(dev, at::kDouble).contiguous(), yc = b.y_c.to(dev, at::kDouble).contiguous();
  const int64_t B = r.size(0), M = r.size(1);
  rows::IfdRowSettings st = row_settings(lambda, objective, perturbation, o);
  if (!st.self) st.n = batch_total(b, ctx);
  const auto opt = at::TensorOptions().dtype(at::kDouble).device(dev);
  const at::Tensor matched = at::empty({B}, opt.dtype(at::kByte));
  IfdEstimate e;
  e.dq = at::empty({B}, opt);
  at::Tensor d1 = at::empty({B, M}, opt), g1 = at::empty({B, M}, opt);
  at::Tensor d2 = st.score ? at::Tensor() : at::empty({B, M}, opt), g2 = st.score ? at::Tensor() : at::empty({B, M}, opt);
  cuda::IfdOutputs out{matched.data_ptr<uint8_t>(), e.dq.data_ptr<double>(), d1.data_ptr<double>(),
                       g1.data_ptr<double>(), st.score ? nullptr : d2.data_ptr<double>(),
                       st.score ? nullptr : g2.data_ptr<double>()};
  std::string why;
  if (!cuda::ifd_estimate<T>(r.data_ptr<T>(), c.data_ptr<T>(), B, int(M), t.data_ptr<int64_t>(), u.data_ptr<double>(),
                             yr.data_ptr<double>(), yc.data_ptr<double>(), st, ctx.reduce_sum, ctx.reduce_max, out,
                             nullptr, &why))
    throw std::runtime_error("CUDA IFD kernel failed: " + why);
  e.matched = matched.to(at::kBool);
  if (st.score)
    e.delta_s = d1, e.g_s = g1;
  else
    e.delta_r = d1, e.g_r = g1, e.delta_c = d2, e.g_c = g2;
  return e;
}
#endif
}  // namespace

IfdEstimate ifd_estimate(const at::Tensor& r_hat, const at::Tensor& c_hat, const model::Batch& b,
                         const at::Tensor& u_in, const LossContext& ctx, double lambda, IfdObjective objective,
                         IfdPerturbation perturbation, const IfdOptions& o) {
  torch::NoGradGuard no_grad;
  const int64_t M = r_hat.size(1);
  if (M < 2)
    throw DataError(fmt::format("IFD loss: the scores have {} arm(s); a policy needs at least 2 arms to flip", M));
  if (!(lambda >= 0) || !std::isfinite(lambda) || (perturbation == IfdPerturbation::kRevenueCost && lambda == 0))
    throw DataError(fmt::format("IFD loss: λ = {}; the estimator needs a finite λ {}", lambda,
                                perturbation == IfdPerturbation::kRevenueCost ? "> 0 (δ^c divides by λ)" : ">= 0"));
  const at::ScalarType dt = r_hat.scalar_type();
  if (r_hat.device().is_cpu() && c_hat.scalar_type() == dt && (dt == at::kFloat || dt == at::kDouble) && M <= 64)
    return dt == at::kFloat ? estimate_rows<float>(r_hat, c_hat, b, u_in, ctx, lambda, objective, perturbation, o)
                            : estimate_rows<double>(r_hat, c_hat, b, u_in, ctx, lambda, objective, perturbation, o);
#ifdef DFCL_HAVE_CUDA
  if (r_hat.is_cuda() && c_hat.scalar_type() == dt && (dt == at::kFloat || dt == at::kDouble) && M <= 64)
    return dt == at::kFloat ? estimate_cuda<float>(r_hat, c_hat, b, u_in, ctx, lambda, objective, perturbation, o)
                            : estimate_cuda<double>(r_hat, c_hat, b, u_in, ctx, lambda, objective, perturbation, o);
#endif
  return detail::ifd_estimate_ops(r_hat, c_hat, b, u_in, ctx, lambda, objective, perturbation, o);
}

namespace detail {
IfdEstimate ifd_estimate_ops(const at::Tensor& r_hat, const at::Tensor& c_hat, const model::Batch& b,
                             const at::Tensor& u_in, const LossContext& ctx, double lambda, IfdObjective objective,
                             IfdPerturbation perturbation, const IfdOptions& o) {
  torch::NoGradGuard no_grad;
  const at::Tensor r = r_hat.detach().to(at::kDouble), c = c_hat.detach().to(at::kDouble);
  const at::Tensor a = lambda != 0 ? r - c * lambda : r;
  const at::Tensor t = b.t.to(r.device()), t1 = t.unsqueeze(1);
  const auto top = a.topk(2, 1);  // sorted: column 0 = π_i, column 1 = the runner-up k_i
  const at::Tensor v0 = std::get<0>(top).select(1, 0), v1 = std::get<0>(top).select(1, 1);
  const at::Tensor pi = std::get<1>(top).select(1, 0), k = std::get<1>(top).select(1, 1);
  const at::Tensor u = u_in.detach().to(r.device(), at::kDouble);
  const at::Tensor yr = b.y_r.to(r.device(), at::kDouble), yc = b.y_c.to(r.device(), at::kDouble);
  const double kappa = objective == IfdObjective::kDual ? lambda : 0.0;

  IfdEstimate e;
  e.matched = pi.eq(t);
  const at::Tensor live = u.gt(0);
  const at::Tensor sgn = at::where(e.matched, at::full_like(u, -1.0), at::ones_like(u));  // −1 on S+, +1 on S−

  // ΔQ_i.
  if (o.normalisation == IfdNormalisation::kHt) {
    const double n = batch_total(b, ctx);
    const at::Tensor net = kappa != 0 ? yr - yc * kappa : yr;
    e.dq = n > 0 ? keep(sgn * u * net / n, live) : at::zeros_like(u);
  } else {
    const at::Tensor mu = keep(u, e.matched);
    const at::Tensor local = at::stack({mu.sum(), (mu * yr).sum(), (mu * yc).sum()}).cpu();
    std::vector<double> sums(local.data_ptr<double>(), local.data_ptr<double>() + 3);
    if (ctx.reduce_sum) ctx.reduce_sum(sums);
    const double W = sums[0];
    const double rbar = W > 0 ? sums[1] / W : 0.0, cbar = W > 0 ? sums[2] / W : 0.0;
    const at::Tensor su = sgn * u, w2 = su + W;
    const at::Tensor ok = w2.gt(0).logical_and(live);
    at::Tensor diff = yr - rbar;
    if (kappa != 0) diff = diff - (yc - cbar) * kappa;
    e.dq = keep(su * diff / at::where(ok, w2, at::ones_like(w2)), ok);
  }

  // Minimal flipping perturbations. gap >= 0: how far row i's flip is in score units.
  const at::Tensor a_t = a.gather(1, t1).squeeze(1);
  const at::Tensor gap = at::where(e.matched, v0 - v1, v0 - a_t);
  const at::Tensor step = gap + o.eps0;
  // An S− row's current arm: lowering it alone flips the row into S+ only when t_i is the runner-up.
  const at::Tensor keep_other = o.strict_flips ? live.logical_and(e.matched.logical_or(k.eq(t))) : live;

  std::vector<at::Tensor> mats;
  at::Tensor idx;  // revenue_cost: B x 2 columns (t_i, the other arm)
  if (perturbation == IfdPerturbation::kRevenueCost) {
    idx = at::stack({t, at::where(e.matched, k, pi)}, 1);
    const at::Tensor cstep = gap / lambda + o.eps0;  // eps0 after dividing by λ, as the reference code
    mats.push_back(at::stack({keep(sgn * step, live), keep(-sgn * step, keep_other)}, 1));    // δ^r
    mats.push_back(at::stack({keep(-sgn * cstep, live), keep(sgn * cstep, keep_other)}, 1));  // δ^c
  } else {
    // S+: h_t = −(a_t − max_{j≠t} a_j + eps0), h_j = a_t − a_j + eps0 for j ≠ t. S−: h_t = gap + eps0, h_π = −h_t.
    at::Tensor hp = (a_t.unsqueeze(1) - a).add_(o.eps0);
    hp.scatter_(1, t1, (-step).unsqueeze(1));
    at::Tensor hn = at::zeros_like(a);
    hn.scatter_(1, t1, step.unsqueeze(1));
    hn.scatter_(1, pi.unsqueeze(1), keep(-step, keep_other).unsqueeze(1));
    at::Tensor hs = at::where(e.matched.unsqueeze(1), hp, hn);
    mats.push_back(keep(hs, live.unsqueeze(1).expand_as(hs)));
  }

  std::vector<double> maxima(mats.size(), 0.0);
  if (o.clip == IfdClip::kMax) {
    for (size_t m = 0; m < mats.size(); ++m) maxima[m] = local_abs_max(mats[m]);
    if (ctx.reduce_max) ctx.reduce_max(maxima);
  }
  std::vector<Clipped> clipped;
  for (size_t m = 0; m < mats.size(); ++m) clipped.push_back(clip_delta(mats[m], o.clip, o.h, maxima[m]));

  if (perturbation == IfdPerturbation::kRevenueCost) {
    const at::Tensor zeros = at::zeros_like(a);
    e.delta_r = zeros.scatter(1, idx, clipped[0].delta);
    e.delta_c = zeros.scatter(1, idx, clipped[1].delta);
    e.g_r = zeros.scatter(1, idx, gradient(e.dq, clipped[0]));
    e.g_c = zeros.scatter(1, idx, gradient(e.dq, clipped[1]));
  } else {
    e.delta_s = clipped[0].delta;
    e.g_s = gradient(e.dq, clipped[0]);
  }
  return e;
}
}  // namespace detail

at::Tensor softmax_node(const at::Tensor& g, const at::Tensor& r_hat, const at::Tensor& c_hat, double lambda,
                        double tau) {
  const at::Tensor q = at::softmax((r_hat - c_hat * lambda) / tau, 1);  // ĉ stays in the graph even at λ = 0
  return -(g.detach().to(q.scalar_type()) * q).sum();
}

at::Tensor softmax_node_grad(const at::Tensor& g_in, const at::Tensor& r_hat, const at::Tensor& c_hat, double lambda,
                             double tau, at::Tensor& d_r, at::Tensor& d_c) {
  torch::NoGradGuard no_grad;
  const at::Tensor g = g_in.to(at::kDouble);
  const at::Tensor r = r_hat.detach().to(at::kDouble), c = c_hat.detach().to(at::kDouble);
  const at::Tensor a = lambda != 0 ? r - c * lambda : r;
  const at::Tensor q = at::softmax(a / tau, 1);
  const at::Tensor gq = g * q;
  const at::Tensor da = (gq - q * gq.sum(1, true)).mul_(-1.0 / tau);
  d_r.add_(da.to(d_r.scalar_type()));
  if (lambda != 0) d_c.add_((da * -lambda).to(d_c.scalar_type()));
  return -gq.sum();
}

}  // namespace dfcl::loss
