// \brief Row math shared by the factual losses: the per-row loss of the arm each user received.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <string>  // for std::string

#include "loss/rows.h"     // for OutcomeLoss, rows::FactualRow
#include "model/batch.h"   // for Batch
#include "model/scores.h"  // for Scores

namespace dfcl {
class Config;
}

namespace dfcl::loss {

/// Throws DataError unless scores are B x M with the batch's B and the batch's arms lie in [0, M).
void check_shapes(const model::Batch& batch, const model::Scores& scores);

/// l(y_i, pred[i, t_i]) per row (B), in pred's dtype:
///   mse: (y - p)^2;  bce: -(y log p + (1 - y) log(1 - p)), p and 1 - p clamped at
///   1e-30 (a saturated sigmoid gets gradient 0, never NaN).
/// `outcome` names the column in errors (bce labels outside [0, 1] throw DataError).
at::Tensor factual_terms(const at::Tensor& pred, const at::Tensor& t, const at::Tensor& y, OutcomeLoss kind,
                         const char* outcome);

/// The per-row factual loss a_r l_r(y_r, r_hat[t]) + a_c l_c(y_c, c_hat[t]) shared by tsm_sl and factual.
struct FactualTerms {
  OutcomeLoss revenue = OutcomeLoss::kMse, cost = OutcomeLoss::kMse;
  double revenue_weight = 1, cost_weight = 1;  // a_r, a_c
  /// Keys of the `loss` section: revenue_loss, cost_loss (mse | bce), revenue_weight, cost_weight (>= 0, not both 0).
  /// Throws ConfigError naming loss.<key> and the fix.
  static FactualTerms from(const Config& section);
  /// The per-row settings the fused CPU path and the CUDA kernel read (loss/rows.h).
  rows::FactualRow row() const { return rows::FactualRow{revenue, cost, revenue_weight, cost_weight}; }
  /// B values; an outcome with weight 0 is not evaluated.
  at::Tensor per_row(const model::Batch& batch, const model::Scores& scores) const;
  /// The fused path for sum_i coef_i per_row_i with coef_i = w_i arm_scale[t_i] (arm_scale: M values, a constant
  /// of the batch): its value (0-dim, no graph, no host sync) and its gradient with respect to the scores, d_r and
  /// d_c (B x M, resized and overwritten; nonzero only at (i, t_i)). BCE's clamps act as in per_row: where one is
  /// active the gradient is 0. On the CPU it is one pass over the rows; elsewhere a few ATen ops.
  /// Throws DataError for bce labels outside [0, 1], as per_row does.
  void value_and_grad(const model::Batch& batch, const model::Scores& scores, const at::Tensor& arm_scale,
                      at::Tensor& value, at::Tensor& d_r, at::Tensor& d_c) const;
};

}  // namespace dfcl::loss
