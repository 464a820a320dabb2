// \brief InputScaler: moments, in-place standardisation, named-tensor round trip.
#include "model/input_scaler.h"

#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::tensor, torch::NoGradGuard

#include <cmath>  // for std::sqrt

#include "core/error.h"  // for DataError

namespace dfcl::model {

InputScaler InputScaler::from_moments(double n, const std::vector<double>& sum, const std::vector<double>& sum_sq) {
  if (!(n > 0)) throw DataError("input scaler: no training rows to fit the feature standardisation on");
  if (sum.size() != sum_sq.size()) throw DataError("input scaler: moment vectors differ in length");
  InputScaler s;
  s.mean_.resize(sum.size());
  s.scale_.resize(sum.size());
  for (size_t f = 0; f < sum.size(); ++f) {
    const double m = sum[f] / n, var = std::max(0.0, sum_sq[f] / n - m * m);
    const double sd = std::sqrt(var);
    s.mean_[f] = m;
    s.scale_[f] = sd > 1e-12 * std::max(1.0, std::abs(m)) ? sd : 1.0;
  }
  return s;
}

void InputScaler::accumulate(const float* x, int64_t rows, int features, std::vector<double>& sum,
                             std::vector<double>& sum_sq) {
  sum.resize(size_t(features), 0.0);
  sum_sq.resize(size_t(features), 0.0);
  for (int64_t i = 0; i < rows; ++i) {
    const float* r = x + i * features;
    for (int f = 0; f < features; ++f) {
      const double v = r[f];
      sum[size_t(f)] += v;
      sum_sq[size_t(f)] += v * v;
    }
  }
}

void InputScaler::apply_(at::Tensor& x) const {
  if (identity()) return;
  if (x.dim() != 2 || x.size(1) != features())
    throw DataError(fmt::format("input scaler: features have {} columns, the scaler was fitted on {}",
                                x.dim() == 2 ? x.size(1) : -1, features()));
  torch::NoGradGuard no_grad;
  if (!mean_t_.defined() || mean_t_.scalar_type() != x.scalar_type() || mean_t_.device() != x.device()) {
    std::vector<double> inv(scale_.size());
    for (size_t f = 0; f < scale_.size(); ++f) inv[f] = 1.0 / scale_[f];
    const auto o = at::TensorOptions().dtype(at::kDouble);
    mean_t_ = at::tensor(mean_, o).to(x.device(), x.scalar_type());
    inv_t_ = at::tensor(inv, o).to(x.device(), x.scalar_type());
  }
  x.sub_(mean_t_).mul_(inv_t_);
}

NamedTensors InputScaler::to_tensors() const {
  if (identity()) return {};
  const auto o = at::TensorOptions().dtype(at::kDouble);
  return {{"input.mean", at::tensor(mean_, o)}, {"input.scale", at::tensor(scale_, o)}};
}

InputScaler InputScaler::from_tensors(const NamedTensors& tensors, int features, const std::string& where) {
  const at::Tensor *m = nullptr, *s = nullptr;
  for (const auto& kv : tensors) {
    if (kv.first == "input.mean") m = &kv.second;
    if (kv.first == "input.scale") s = &kv.second;
  }
  if (!m && !s) return {};
  if (!m || !s)
    throw DataError(fmt::format("{}: has only one of input.mean / input.scale; the file is damaged", where));
  InputScaler out;
  for (const at::Tensor* t : {m, s}) {
    if (t->dim() != 1 || t->size(0) != features)
      throw DataError(fmt::format("{}: input standardisation has {} values for a model of {} features", where,
                                  t->numel(), features));
    at::Tensor d = t->to(at::kDouble).contiguous();
    std::vector<double> v(d.data_ptr<double>(), d.data_ptr<double>() + features);
    (t == m ? out.mean_ : out.scale_) = std::move(v);
  }
  for (double v : out.scale_)
    if (!(v > 0)) throw DataError(fmt::format("{}: input.scale holds {}; it must be > 0", where, v));
  return out;
}

}  // namespace dfcl::model
