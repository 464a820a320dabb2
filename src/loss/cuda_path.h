// \brief The fused loss kernels (cuda/loss_kernels.h) for scores on a CUDA device: the GPU branch of the losses'
// value_and_grad. Each function returns false when dfcl was built without CUDA or the tensors do not fit the kernel
// (dtype, layout, more than 64 arms); the caller then uses its ATen ops. Kernels run on the legacy default stream,
// the one LibTorch uses unless a caller sets another.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include "loss/rows.h"  // for rows::FactualRow

namespace dfcl::loss {

/// One softmax-policy term (rows::softmax_policy_row): d_r, d_c (contiguous B x M, on the device) += its gradient
/// (d_c untouched when !cost_grad); value (a 1-element float64 device tensor) += its value.
bool cuda_softmax_term(const at::Tensor& r_hat, const at::Tensor& c_hat, const at::Tensor& t, double lambda,
                       double tau, const at::Tensor& gain, bool cost_grad, at::Tensor& d_r, at::Tensor& d_c,
                       at::Tensor& value);

/// The factual term Σ_i coef_i (a_r l_r + a_c l_c) with coef_i = w_i arm_scale[t_i] (rows::factual_row): d_r, d_c
/// (zeroed here) get its gradient, value (1-element float64 device tensor) += its value; bad gets 1 (revenue) / 2
/// (cost) for a bce label outside [0, 1] (read back only when an outcome is bce).
bool cuda_factual(const rows::FactualRow& f, const at::Tensor& r_hat, const at::Tensor& c_hat, const at::Tensor& t,
                  const at::Tensor& y_r, const at::Tensor& y_c, const at::Tensor& w, const at::Tensor& arm_scale,
                  at::Tensor& d_r, at::Tensor& d_c, at::Tensor& value, int& bad);

/// DHCL (rows::dhcl_row): d_r (contiguous B x M, zeroed) += its gradient, value (1-element float64) += its value;
/// y_r (already divided by K), y_c, ca, cb: the B per-row terms of dhcl.cpp, in the scores' dtype.
bool cuda_dhcl(bool sigmoid, const at::Tensor& r_hat, const at::Tensor& t, const at::Tensor& y_r,
               const at::Tensor& y_c, const at::Tensor& ca, const at::Tensor& cb, double bound, at::Tensor& d_r,
               at::Tensor& value);

}  // namespace dfcl::loss
