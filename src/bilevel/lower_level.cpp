// \brief The lower level's masked MSE, its score gradient and the mixed term's gate cotangent (lower_level.h).
#include "bilevel/lower_level.h"

#include "bilevel/lower_rows.h"  // for rows::lower_cell, rows::gate_cotangent_cell

#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::cat, at::one_hot, torch::NoGradGuard

#include <initializer_list>  // for std::initializer_list

#include "core/error.h"  // for ConfigError

#ifdef DFCL_HAVE_CUDA
#include <stdexcept>  // for std::runtime_error
#include <string>     // for std::string

#include "cuda/lower_kernels.h"  // for lower_value_and_grad, gate_cotangent (device arrays)
#endif

namespace dfcl::bilevel {

LowerMode lower_mode_from(const std::string& name) {
  if (name == "counterfactual") return LowerMode::kCounterfactual;
  if (name == "factual_weights") return LowerMode::kFactualWeights;
  throw ConfigError(fmt::format("bilevel.labels is '{}'; use counterfactual (bridge-gated pseudo-labels on the "
                                "counterfactual cells, the paper's Bi-DFCL) or factual_weights (the ablation without "
                                "counterfactual labels: per-sample bridge weights on the factual cells)",
                                name));
}

std::string to_string(LowerMode mode) {
  return mode == LowerMode::kCounterfactual ? "counterfactual" : "factual_weights";
}

at::Tensor cells(const at::Tensor& r_hat, const at::Tensor& c_hat) { return at::cat({r_hat, c_hat}, 1); }

LowerTargets lower_targets(LowerMode mode, const model::Batch& b, const LowerInputs& in) {
  const int64_t M = in.teacher.size(1) / 2;
  const auto o = in.teacher.options();
  LowerTargets t;
  const at::Tensor onehot = at::one_hot(b.t, M).to(o);         // B x M
  t.factual = at::cat({onehot, onehot}, 1);                      // B x 2M
  const at::Tensor labels = at::cat({b.y_r.to(o).unsqueeze(1).expand({-1, M}), b.y_c.to(o).unsqueeze(1).expand({-1, M})}, 1);
  const at::Tensor w = t.weight = b.weight.to(o).unsqueeze(1);   // B x 1
  if (mode == LowerMode::kCounterfactual) {
    const at::Tensor pseudo = in.gates * in.teacher + (1 - in.gates) * in.snapshot;
    t.y = t.factual * labels + (1 - t.factual) * pseudo;
    t.omega = w.expand({-1, 2 * M});
  } else {
    t.y = t.factual * labels;
    t.omega = 2 * in.gates * t.factual * w;
  }
  return t;
}

at::Tensor lower_loss(const at::Tensor& yhat, const LowerTargets& t, double kappa) {
  const at::Tensor e = yhat - t.y;
  return kappa * (t.omega * e * e).sum();
}

namespace {
// Tensors of one float dtype, all on the CPU (cuda false) or all on a GPU, that the per-cell loops and kernels read
// (contiguous copies where needed).
bool cells_on(bool cuda, std::initializer_list<const at::Tensor*> xs) {
  const at::ScalarType dt = (*xs.begin())->scalar_type();
  if (dt != at::kFloat && dt != at::kDouble) return false;
  for (const at::Tensor* x : xs)
    if (!x->defined() || x->is_cuda() != cuda || !(cuda || x->device().is_cpu()) || x->scalar_type() != dt)
      return false;
  return true;
}
bool cpu_cells(std::initializer_list<const at::Tensor*> xs) { return cells_on(false, xs); }

template <class T>
double value_and_grad_cpu(const at::Tensor& yhat_in, const LowerTargets& t, double kappa, at::Tensor& d_r,
                          at::Tensor& d_c) {
  const at::Tensor yhat = yhat_in.contiguous(), y = t.y.contiguous(), omega = t.omega.contiguous();
  const int64_t B = yhat.size(0), M2 = yhat.size(1), M = M2 / 2;
  d_r = at::empty({B, M}, yhat.options()), d_c = at::empty({B, M}, yhat.options());
  const T *yh = yhat.data_ptr<T>(), *yy = y.data_ptr<T>(), *om = omega.data_ptr<T>();
  T *dr = d_r.data_ptr<T>(), *dc = d_c.data_ptr<T>();
  const T k = T(kappa);
  double value = 0;
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < M2; ++j) {
      const int64_t c = i * M2 + j;
      value += rows::lower_cell<T>(yh[c], yy[c], om[c], k, j < M ? dr[i * M + j] : dc[i * M + j - M]);
    }
  return value;
}

template <class T>
at::Tensor cotangent_cpu(bool counterfactual, const at::Tensor& yhat_in, const LowerTargets& t, const LowerInputs& in,
                         const at::Tensor& u_in, double kappa) {
  const at::Tensor yhat = yhat_in.contiguous(), y = t.y.contiguous(), omega = t.omega.contiguous(),
                   f = t.factual.contiguous(), w = t.weight.contiguous(), u = u_in.contiguous();
  // The teacher and the snapshot are read on counterfactual cells only (factual_weights may not carry them).
  const at::Tensor teacher = counterfactual ? in.teacher.contiguous() : yhat,
                   snapshot = counterfactual ? in.snapshot.contiguous() : yhat;
  const int64_t B = yhat.size(0), M2 = yhat.size(1);
  at::Tensor q = at::empty({B, M2}, yhat.options());
  const T *yh = yhat.data_ptr<T>(), *yy = y.data_ptr<T>(), *om = omega.data_ptr<T>(), *ff = f.data_ptr<T>(),
          *ww = w.data_ptr<T>(), *uu = u.data_ptr<T>(), *te = teacher.data_ptr<T>(), *sn = snapshot.data_ptr<T>();
  T* qq = q.data_ptr<T>();
  const T k = T(kappa);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < M2; ++j) {
      const int64_t c = i * M2 + j;
      qq[c] = rows::gate_cotangent_cell<T>(counterfactual, ff[c] != T(0), yh[c], yy[c], om[c], ww[i], uu[c], te[c],
                                           sn[c], k);
    }
  return q;
}
#ifdef DFCL_HAVE_CUDA
// The device path (cuda/lower_kernels.h, the same cell functions): CUDA tensors of one float dtype.
bool cuda_cells(std::initializer_list<const at::Tensor*> xs) { return cells_on(true, xs); }

void cuda_check(bool ok, const std::string& why) {
  if (!ok) throw std::runtime_error("CUDA lower-level kernel failed: " + why);
}

template <class T>
double value_and_grad_cuda(const at::Tensor& yhat_in, const LowerTargets& t, double kappa, at::Tensor& d_r,
                           at::Tensor& d_c) {
  const at::Tensor yhat = yhat_in.contiguous(), y = t.y.contiguous(), omega = t.omega.contiguous();
  const int64_t B = yhat.size(0), M = yhat.size(1) / 2;
  d_r = at::empty({B, M}, yhat.options()), d_c = at::empty({B, M}, yhat.options());
  at::Tensor acc = at::zeros({1}, yhat.options().dtype(at::kDouble));
  std::string why;
  cuda_check(cuda::lower_value_and_grad<T>(yhat.data_ptr<T>(), y.data_ptr<T>(), omega.data_ptr<T>(), B, int(M), kappa,
                                           d_r.data_ptr<T>(), d_c.data_ptr<T>(), acc.data_ptr<double>(), nullptr, &why),
             why);
  return acc.item<double>();
}

template <class T>
at::Tensor cotangent_cuda(bool cf, const at::Tensor& yhat_in, const LowerTargets& t, const LowerInputs& in,
                          const at::Tensor& u_in, double kappa) {
  const at::Tensor yhat = yhat_in.contiguous(), y = t.y.contiguous(), omega = t.omega.contiguous(),
                   f = t.factual.contiguous(), w = t.weight.contiguous(), u = u_in.contiguous();
  const at::Tensor teacher = cf ? in.teacher.contiguous() : yhat, snapshot = cf ? in.snapshot.contiguous() : yhat;
  at::Tensor q = at::empty(yhat.sizes(), yhat.options());
  std::string why;
  cuda_check(cuda::gate_cotangent<T>(cf, yhat.data_ptr<T>(), y.data_ptr<T>(), omega.data_ptr<T>(), f.data_ptr<T>(),
                                     w.data_ptr<T>(), u.data_ptr<T>(), teacher.data_ptr<T>(), snapshot.data_ptr<T>(),
                                     yhat.size(0), int(yhat.size(1) / 2), kappa, q.data_ptr<T>(), nullptr, &why),
             why);
  return q;
}
#endif
}  // namespace

double lower_value_and_grad(const at::Tensor& yhat, const LowerTargets& t, double kappa, at::Tensor& d_r,
                            at::Tensor& d_c) {
  torch::NoGradGuard no_grad;
  if (cpu_cells({&yhat, &t.y, &t.omega}))  // one pass over the cells (bilevel/lower_rows.h, the kernel's cell math)
    return yhat.scalar_type() == at::kFloat ? value_and_grad_cpu<float>(yhat, t, kappa, d_r, d_c)
                                            : value_and_grad_cpu<double>(yhat, t, kappa, d_r, d_c);
#ifdef DFCL_HAVE_CUDA
  if (cuda_cells({&yhat, &t.y, &t.omega}))
    return yhat.scalar_type() == at::kFloat ? value_and_grad_cuda<float>(yhat, t, kappa, d_r, d_c)
                                            : value_and_grad_cuda<double>(yhat, t, kappa, d_r, d_c);
#endif
  const int64_t M = yhat.size(1) / 2;
  const at::Tensor we = t.omega * (yhat - t.y);
  const double value = kappa * (we * (yhat - t.y)).sum().item<double>();
  const at::Tensor d = (2 * kappa) * we;
  d_r = d.narrow(1, 0, M).contiguous();
  d_c = d.narrow(1, M, M).contiguous();
  return value;
}

at::Tensor gate_cotangent(LowerMode mode, const at::Tensor& yhat, const LowerTargets& t, const LowerInputs& in,
                          const at::Tensor& u, double kappa) {
  torch::NoGradGuard no_grad;
  const bool cf = mode == LowerMode::kCounterfactual;
  const bool fused = cf ? cpu_cells({&yhat, &t.y, &t.omega, &t.factual, &t.weight, &u, &in.teacher, &in.snapshot})
                        : cpu_cells({&yhat, &t.y, &t.omega, &t.factual, &t.weight, &u});
  if (fused)
    return yhat.scalar_type() == at::kFloat ? cotangent_cpu<float>(cf, yhat, t, in, u, kappa)
                                            : cotangent_cpu<double>(cf, yhat, t, in, u, kappa);
#ifdef DFCL_HAVE_CUDA
  if (cf ? cuda_cells({&yhat, &t.y, &t.omega, &t.factual, &t.weight, &u, &in.teacher, &in.snapshot})
         : cuda_cells({&yhat, &t.y, &t.omega, &t.factual, &t.weight, &u}))
    return yhat.scalar_type() == at::kFloat ? cotangent_cuda<float>(cf, yhat, t, in, u, kappa)
                                            : cotangent_cuda<double>(cf, yhat, t, in, u, kappa);
#endif
  if (mode == LowerMode::kCounterfactual) return (2 * kappa) * t.omega * u * (in.teacher - in.snapshot) * (1 - t.factual);
  (void)in;  // ω = 2 w f weight, so ∂ω/∂w = 2 f weight
  return (-4 * kappa) * t.weight * t.factual * (yhat - t.y) * u;
}

}  // namespace dfcl::bilevel
