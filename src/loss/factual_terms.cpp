// \brief factual_terms: gather the factual arm's prediction and apply MSE or BCE; shape checks.
#include "loss/factual_terms.h"

#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::gather, at::log, at::aminmax, torch::NoGradGuard

#include <algorithm>  // for std::min, std::max
#include <cmath>      // for std::log, std::isnan

#include "core/config.h"  // for Config
#include "core/error.h"   // for ConfigError, DataError
#include "loss/cuda_path.h"  // for cuda_factual

namespace dfcl::loss {

namespace {
OutcomeLoss read_outcome_loss(const Config& s, const std::string& key) {
  const std::string v = s.get<std::string>(key, "mse");
  if (v == "mse") return OutcomeLoss::kMse;
  if (v == "bce") return OutcomeLoss::kBce;
  throw ConfigError(
      fmt::format("loss.{}: unknown outcome loss '{}' ({}); use mse (real-valued outcomes) or bce "
                  "(0/1 outcomes with a sigmoid output)",
                  key, v, s.origin(key)));
}

constexpr double kTiny = rows::kBceTiny;  // BCE's clamp on p and 1 - p

void check_bce_labels(const at::Tensor& y, const char* outcome) {
  if (y.numel() == 0) return;
  auto [lo, hi] = at::aminmax(y);  // one pass; one host read
  const at::Tensor both = at::stack({lo, hi}).to(at::kCPU, at::kDouble);
  const double l = both[0].item<double>(), h = both[1].item<double>();
  if (l < 0 || h > 1)
    throw DataError(
        fmt::format("loss: {} labels must lie in [0, 1] for bce; use mse for real-valued outcomes", outcome));
}

// One outcome of the ATen path of FactualTerms::value_and_grad: returns a sum_i coef_i l(y_i, p_i) (0-dim) and
// writes a coef_i dl/dp (y_i, p_i) at (i, t_i) of d (B x M, zeroed here).
at::Tensor outcome_value_and_grad(const at::Tensor& pred, const at::Tensor& t1, const at::Tensor& y_in,
                                  OutcomeLoss kind, double a, const at::Tensor& coef, const char* outcome,
                                  at::Tensor& d) {
  at::Tensor p = pred.gather(1, t1).squeeze(1);
  at::Tensor y = y_in.to(pred.scalar_type());
  at::Tensor value, g;
  if (kind == OutcomeLoss::kMse) {
    at::Tensor diff = p.sub_(y);       // p - y (p is gather's own buffer)
    g = coef * diff;                   // coef (p - y)
    value = at::dot(g, diff).mul_(a);  // a sum coef (p - y)^2
    g.mul_(2 * a);                     // a coef 2 (p - y)
  } else {
    check_bce_labels(y, outcome);
    // l = -(y log max(p, tiny) + (1 - y) log max(1 - p, tiny)); clamp_min passes the gradient where x >= tiny.
    at::Tensor q = 1 - p;
    at::Tensor pc = p.clamp_min(kTiny), qc = q.clamp_min(kTiny);
    at::Tensor l = y * at::log(pc) + (1 - y) * at::log(qc);
    value = at::dot(coef, l).mul_(-a);
    at::Tensor dl = (1 - y) * qc.reciprocal() * q.ge(kTiny) - y * pc.reciprocal() * p.ge(kTiny);
    g = dl.mul_(coef).mul_(a);
  }
  d.zero_().scatter_(1, t1, g.unsqueeze(1));
  return value;
}

// The row functions' bad-label bits (rows::factual_row) as the error the ATen path throws.
void throw_bad_labels(int bad) {
  if (bad)
    throw DataError(fmt::format("loss: {} labels must lie in [0, 1] for bce; use mse for real-valued outcomes",
                                (bad & 1) ? "revenue" : "cost"));
}

// The same on the CPU in one pass over the rows (no temporaries), through loss/rows.h's factual_row (the CUDA
// kernel's row function).
template <class T>
double value_and_grad_cpu(const FactualTerms& f, const model::Batch& b, const model::Scores& s,
                          const at::Tensor& scale_t, at::Tensor& d_r, at::Tensor& d_c) {
  const int64_t B = b.rows(), M = s.r_hat.size(1);
  const at::Tensor t_c = b.t.contiguous(), w_c = b.weight.contiguous(), yr_c = b.y_r.contiguous(),
                   yc_c = b.y_c.contiguous(), sc_c = scale_t.contiguous();
  const at::Tensor r_c = s.r_hat.stride(1) == 1 ? s.r_hat : s.r_hat.contiguous();
  const at::Tensor c_c = s.c_hat.stride(1) == 1 ? s.c_hat : s.c_hat.contiguous();
  const int64_t* t = t_c.data_ptr<int64_t>();
  const T *w = w_c.data_ptr<T>(), *yr = yr_c.data_ptr<T>(), *yc = yc_c.data_ptr<T>(), *scale = sc_c.data_ptr<T>();
  const T *r = r_c.data_ptr<T>(), *c = c_c.data_ptr<T>();
  const int64_t rs = r_c.stride(0), cs = c_c.stride(0);
  T *dr = d_r.data_ptr<T>(), *dc = d_c.data_ptr<T>();
  const rows::FactualRow row = f.row();
  double value = 0;
  int bad = 0;
  for (int64_t i = 0; i < B; ++i) {
    T* dri = dr + i * M;
    T* dci = dc + i * M;
    for (int64_t k = 0; k < M; ++k) dri[k] = 0, dci[k] = 0;
    const int j = int(t[i]);
    value += rows::factual_row<T>(row, r + i * rs, c + i * cs, 1, j, yr[i], yc[i], w[i] * scale[j], dri, dci, bad);
  }
  throw_bad_labels(bad);
  return value;
}

// d resized to B x M like `like` (reallocated only when the shape, dtype or device differ).
void fit(at::Tensor& d, const at::Tensor& like) {
  if (!d.defined() || d.sizes() != like.sizes() || d.dtype() != like.dtype() || d.device() != like.device() ||
      !d.is_contiguous())
    d = at::empty(like.sizes(), like.options().memory_format(at::MemoryFormat::Contiguous));
}
}  // namespace

void FactualTerms::value_and_grad(const model::Batch& b, const model::Scores& s, const at::Tensor& arm_scale,
                                  at::Tensor& value, at::Tensor& d_r, at::Tensor& d_c) const {
  torch::NoGradGuard no_grad;
  fit(d_r, s.r_hat), fit(d_c, s.c_hat);
  const at::ScalarType dt = s.r_hat.scalar_type();
  const at::Tensor scale = arm_scale.to(dt);
  bool cpu = (dt == at::kFloat || dt == at::kDouble) && s.c_hat.scalar_type() == dt && b.t.scalar_type() == at::kLong;
  for (const at::Tensor* x : {&s.r_hat, &s.c_hat, &b.t, &b.y_r, &b.y_c, &b.weight, &scale})
    cpu = cpu && x->device().is_cpu() && (x == &b.t || x->scalar_type() == dt);
  if (cpu) {
    // One pass over the rows, no temporaries: the common case of a CPU training step.
    const double v = dt == at::kFloat ? value_and_grad_cpu<float>(*this, b, s, scale, d_r, d_c)
                                      : value_and_grad_cpu<double>(*this, b, s, scale, d_r, d_c);
    value = at::scalar_tensor(v, s.r_hat.options());
    return;
  }
  if (s.r_hat.is_cuda()) {  // the fused kernel (loss/cuda_path.h), when the tensors fit it
    at::Tensor acc = at::zeros({1}, s.r_hat.options().dtype(at::kDouble));
    int bad = 0;
    if (cuda_factual(row(), s.r_hat, s.c_hat, b.t, b.y_r, b.y_c, b.weight, scale, d_r, d_c, acc, bad)) {
      throw_bad_labels(bad);
      value = acc.squeeze(0).to(dt);
      return;
    }
  }
  const at::Tensor coef = b.weight.to(dt) * scale.index_select(0, b.t);
  const at::Tensor t1 = b.t.unsqueeze(1);
  at::Tensor v;
  if (revenue_weight > 0)
    v = outcome_value_and_grad(s.r_hat, t1, b.y_r, revenue, revenue_weight, coef, "revenue", d_r);
  else
    d_r.zero_();
  if (cost_weight > 0) {
    at::Tensor c = outcome_value_and_grad(s.c_hat, t1, b.y_c, cost, cost_weight, coef, "cost", d_c);
    v = v.defined() ? v.add_(c) : c;
  } else {
    d_c.zero_();
  }
  value = v;
}

FactualTerms FactualTerms::from(const Config& s) {
  FactualTerms f;
  f.revenue = read_outcome_loss(s, "revenue_loss");
  f.cost = read_outcome_loss(s, "cost_loss");
  f.revenue_weight = s.get<double>("revenue_weight", f.revenue_weight);
  f.cost_weight = s.get<double>("cost_weight", f.cost_weight);
  if (!(f.revenue_weight >= 0) || !(f.cost_weight >= 0) || f.revenue_weight + f.cost_weight <= 0)
    throw ConfigError(fmt::format("loss.revenue_weight = {}, loss.cost_weight = {}: both must be >= 0 and not both 0",
                                  f.revenue_weight, f.cost_weight));
  return f;
}

at::Tensor FactualTerms::per_row(const model::Batch& b, const model::Scores& s) const {
  at::Tensor out;
  if (revenue_weight > 0) out = revenue_weight * factual_terms(s.r_hat, b.t, b.y_r, revenue, "revenue");
  if (cost_weight > 0) {
    at::Tensor c = cost_weight * factual_terms(s.c_hat, b.t, b.y_c, cost, "cost");
    out = out.defined() ? out + c : c;
  }
  return out;
}

void check_shapes(const model::Batch& b, const model::Scores& s) {
  const int64_t B = b.rows();
  for (const auto* p : {&s.r_hat, &s.c_hat}) {
    const char* name = p == &s.r_hat ? "r_hat" : "c_hat";
    if (!p->defined() || p->dim() != 2 || p->size(0) != B || p->size(1) != s.r_hat.size(1))
      throw DataError(
          fmt::format("loss: {} must be B x M with B = {} batch rows and the same M for r_hat and c_hat", name, B));
  }
  for (const auto* p : {&b.y_r, &b.y_c, &b.weight})
    if (!p->defined() || p->dim() != 1 || p->size(0) != B)
      throw DataError(fmt::format("loss: batch columns y_r, y_c, weight must have {} rows like t", B));
  if (B > 0) {
    int64_t lo = 0, hi = 0;
    if (b.t.device().is_cpu() && b.t.scalar_type() == at::kLong && b.t.is_contiguous()) {
      // A plain loop: on a training step's batch an ATen reduction would wake the OpenMP pool for microseconds of
      // work and leave its threads spinning against the model's.
      const int64_t* t = b.t.data_ptr<int64_t>();
      lo = hi = t[0];
      for (int64_t i = 1; i < B; ++i) lo = std::min(lo, t[i]), hi = std::max(hi, t[i]);
    } else {
      auto [lo_t, hi_t] = at::aminmax(b.t);  // one pass, one host read
      const at::Tensor both = at::stack({lo_t, hi_t}).to(at::kCPU, at::kLong);
      lo = both[0].item<int64_t>(), hi = both[1].item<int64_t>();
    }
    if (lo < 0 || hi >= s.r_hat.size(1))
      throw DataError(
          fmt::format("loss: batch arm {} lies outside [0, {}) of the scores; the model and the data "
                      "disagree on the number of arms",
                      lo < 0 ? lo : hi, s.r_hat.size(1)));
  }
}

at::Tensor factual_terms(const at::Tensor& pred, const at::Tensor& t, const at::Tensor& y_in, OutcomeLoss kind,
                         const char* outcome) {
  at::Tensor p = pred.gather(1, t.unsqueeze(1)).squeeze(1);
  at::Tensor y = y_in.to(pred.scalar_type());
  if (kind == OutcomeLoss::kMse) return (y - p).pow(2);
  check_bce_labels(y, outcome);
  // Clamp the probabilities, not the logs: a saturated sigmoid (p == 0 or 1 in float) then gets a zero
  // gradient instead of 0 * inf = NaN. log(1e-30) = -69.1 bounds each term.
  return -(y * at::log(p.clamp_min(kTiny)) + (1 - y) * at::log((1 - p).clamp_min(kTiny)));
}

}  // namespace dfcl::loss
