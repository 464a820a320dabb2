// \brief Per-feature standardisation x' = (x - mean) / scale, fitted on training rows and saved with the model.
//
// Marketing features mix counts, money and 0/1 flags on very different scales (Hillstrom's `history` runs to
// thousands); an MLP trained on them raw needs a tiny learning rate. The scaler is fitted from additive moments
// (count, sum, sum of squares per feature) so that ranks can reduce them through the Communicator.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <string>  // for std::string
#include <vector>  // for std::vector

#include "model/param_file.h"  // for NamedTensors

namespace dfcl::model {

class InputScaler {
 public:
  /// The identity (no standardisation).
  InputScaler() = default;
  /// From moments over n rows: mean = sum / n, scale = population sd; a feature with sd < 1e-12 (constant) keeps
  /// scale 1, so it is only centred. Throws DataError when n <= 0 or the vectors differ in length.
  static InputScaler from_moments(double n, const std::vector<double>& sum, const std::vector<double>& sum_sq);
  /// Adds one row-major block (rows x F) to moment accumulators of size F (float64).
  static void accumulate(const float* x, int64_t rows, int features, std::vector<double>& sum,
                         std::vector<double>& sum_sq);

  bool identity() const { return mean_.empty(); }
  int features() const { return static_cast<int>(mean_.size()); }
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& scale() const { return scale_; }

  /// Standardises x (B x F, any float dtype and device) in place; a no-op for the identity.
  void apply_(at::Tensor& x) const;

  /// As named tensors "input.mean", "input.scale" (float64; empty list for the identity), and back.
  NamedTensors to_tensors() const;
  /// Reads "input.mean"/"input.scale" from `tensors` if present (else the identity); DataError on a length other
  /// than `features`.
  static InputScaler from_tensors(const NamedTensors& tensors, int features, const std::string& where);

 private:
  std::vector<double> mean_, scale_;
  mutable at::Tensor mean_t_, inv_t_;  // cached in the last dtype/device used
};

}  // namespace dfcl::model
