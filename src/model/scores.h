// \brief Predicted outcome tables of a batch: r_hat and c_hat, both B x M (user x arm).
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

namespace dfcl::model {

/// What every uplift model returns and every loss consumes. Row i, column j is the predicted revenue
/// (cost) of user i under arm j; arm 0 is control.
struct Scores {
  at::Tensor r_hat;  // B x M
  at::Tensor c_hat;  // B x M
};

}  // namespace dfcl::model
