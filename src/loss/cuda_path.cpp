// \brief The GPU branch of the fused losses (see cuda_path.h).
#include "loss/cuda_path.h"

#include <torch/torch.h>  // for at::zeros

#include <stdexcept>  // for std::runtime_error
#include <string>     // for std::string

#ifdef DFCL_HAVE_CUDA
#include "cuda/loss_kernels.h"  // for softmax_policy_term, factual_term, DeviceScores
#endif

namespace dfcl::loss {

#ifdef DFCL_HAVE_CUDA
namespace {
// Scores the kernels read: float or double on a CUDA device, columns contiguous, both heads of one dtype.
bool fits(const at::Tensor& r, const at::Tensor& c) {
  const at::ScalarType dt = r.scalar_type();
  return r.is_cuda() && c.is_cuda() && (dt == at::kFloat || dt == at::kDouble) && c.scalar_type() == dt &&
         r.dim() == 2 && r.stride(1) == 1 && c.stride(1) == 1 && r.size(1) <= 64 && r.sizes() == c.sizes();
}

template <class T>
cuda::DeviceScores<T> scores(const at::Tensor& r, const at::Tensor& c) {
  return cuda::DeviceScores<T>{r.data_ptr<T>(), c.data_ptr<T>(), r.stride(0), c.stride(0), r.size(0), int(r.size(1))};
}

void check(bool ok, const std::string& why, const char* what) {
  if (!ok) throw std::runtime_error(std::string("CUDA ") + what + " kernel failed: " + why);
}
}  // namespace

bool cuda_softmax_term(const at::Tensor& r_hat, const at::Tensor& c_hat, const at::Tensor& t, double lambda,
                       double tau, const at::Tensor& gain, bool cost_grad, at::Tensor& d_r, at::Tensor& d_c,
                       at::Tensor& value) {
  if (!fits(r_hat, c_hat) || !d_r.is_contiguous() || !d_c.is_contiguous()) return false;
  const at::Tensor tc = t.to(at::kLong).contiguous(), g = gain.to(r_hat.scalar_type()).contiguous();
  std::string why;
  if (r_hat.scalar_type() == at::kFloat)
    check(cuda::softmax_policy_term<float>(scores<float>(r_hat, c_hat), tc.data_ptr<int64_t>(), g.data_ptr<float>(),
                                           lambda, tau, d_r.data_ptr<float>(), cost_grad ? d_c.data_ptr<float>() : nullptr,
                                           value.data_ptr<double>(), nullptr, &why),
          why, "softmax-policy loss");
  else
    check(cuda::softmax_policy_term<double>(scores<double>(r_hat, c_hat), tc.data_ptr<int64_t>(), g.data_ptr<double>(),
                                            lambda, tau, d_r.data_ptr<double>(),
                                            cost_grad ? d_c.data_ptr<double>() : nullptr, value.data_ptr<double>(),
                                            nullptr, &why),
          why, "softmax-policy loss");
  return true;
}

bool cuda_factual(const rows::FactualRow& f, const at::Tensor& r_hat, const at::Tensor& c_hat, const at::Tensor& t,
                  const at::Tensor& y_r, const at::Tensor& y_c, const at::Tensor& w, const at::Tensor& arm_scale,
                  at::Tensor& d_r, at::Tensor& d_c, at::Tensor& value, int& bad) {
  if (!fits(r_hat, c_hat) || !d_r.is_contiguous() || !d_c.is_contiguous()) return false;
  const at::ScalarType dt = r_hat.scalar_type();
  const at::Tensor tc = t.to(at::kLong).contiguous(), yr = y_r.to(dt).contiguous(), yc = y_c.to(dt).contiguous(),
                   wc = w.to(dt).contiguous(), sc = arm_scale.to(r_hat.device(), dt).contiguous();
  at::Tensor flag = at::zeros({1}, r_hat.options().dtype(at::kInt));
  d_r.zero_(), d_c.zero_();
  std::string why;
  if (dt == at::kFloat)
    check(cuda::factual_term<float>(f, scores<float>(r_hat, c_hat), tc.data_ptr<int64_t>(), yr.data_ptr<float>(),
                                    yc.data_ptr<float>(), wc.data_ptr<float>(), sc.data_ptr<float>(),
                                    d_r.data_ptr<float>(), d_c.data_ptr<float>(), value.data_ptr<double>(),
                                    flag.data_ptr<int>(), nullptr, &why),
          why, "factual loss");
  else
    check(cuda::factual_term<double>(f, scores<double>(r_hat, c_hat), tc.data_ptr<int64_t>(), yr.data_ptr<double>(),
                                     yc.data_ptr<double>(), wc.data_ptr<double>(), sc.data_ptr<double>(),
                                     d_r.data_ptr<double>(), d_c.data_ptr<double>(), value.data_ptr<double>(),
                                     flag.data_ptr<int>(), nullptr, &why),
          why, "factual loss");
  const bool bce = (f.revenue == OutcomeLoss::kBce && f.revenue_weight > 0) ||
                   (f.cost == OutcomeLoss::kBce && f.cost_weight > 0);
  bad = bce ? flag.item<int>() : 0;  // a host read only where a label can be bad
  return true;
}
bool cuda_dhcl(bool sigmoid, const at::Tensor& r_hat, const at::Tensor& t, const at::Tensor& y_r,
               const at::Tensor& y_c, const at::Tensor& ca, const at::Tensor& cb, double bound, at::Tensor& d_r,
               at::Tensor& value) {
  const at::ScalarType dt = r_hat.scalar_type();
  if (!r_hat.is_cuda() || (dt != at::kFloat && dt != at::kDouble) || r_hat.stride(1) != 1 || !d_r.is_contiguous() ||
      r_hat.size(1) > 64)
    return false;
  const at::Tensor tc = t.to(at::kLong).contiguous(), yr = y_r.to(dt).contiguous(), yc = y_c.to(dt).contiguous(),
                   a = ca.to(dt).contiguous(), b = cb.to(dt).contiguous();
  std::string why;
  if (dt == at::kFloat)
    check(cuda::dhcl_term<float>(sigmoid, scores<float>(r_hat, r_hat), tc.data_ptr<int64_t>(), yr.data_ptr<float>(),
                                 yc.data_ptr<float>(), a.data_ptr<float>(), b.data_ptr<float>(), bound,
                                 d_r.data_ptr<float>(), value.data_ptr<double>(), nullptr, &why),
          why, "dhcl loss");
  else
    check(cuda::dhcl_term<double>(sigmoid, scores<double>(r_hat, r_hat), tc.data_ptr<int64_t>(), yr.data_ptr<double>(),
                                  yc.data_ptr<double>(), a.data_ptr<double>(), b.data_ptr<double>(), bound,
                                  d_r.data_ptr<double>(), value.data_ptr<double>(), nullptr, &why),
          why, "dhcl loss");
  return true;
}
#else
bool cuda_dhcl(bool, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
               const at::Tensor&, double, at::Tensor&, at::Tensor&) {
  return false;
}
bool cuda_softmax_term(const at::Tensor&, const at::Tensor&, const at::Tensor&, double, double, const at::Tensor&,
                       bool, at::Tensor&, at::Tensor&, at::Tensor&) {
  return false;
}
bool cuda_factual(const rows::FactualRow&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                  const at::Tensor&, const at::Tensor&, const at::Tensor&, at::Tensor&, at::Tensor&, at::Tensor&,
                  int& bad) {
  bad = 0;
  return false;
}
#endif

}  // namespace dfcl::loss
