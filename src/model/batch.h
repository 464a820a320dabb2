// \brief A loader batch as tensors: features, arm, observed outcomes and row weights.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor, at::ScalarType, at::Device

namespace dfcl::data {
struct Table;
}

namespace dfcl::model {

/// One mini-batch on one device. Padding rows (from the loader's kPad remainder) carry weight 0 and
/// must not change any loss; real rows carry weight 1.
struct Batch {
  at::Tensor x;       // B x F, dtype
  at::Tensor t;       // B, int64: the arm each row received
  at::Tensor y_r;     // B, dtype: observed revenue of that arm
  at::Tensor y_c;     // B, dtype: observed cost of that arm
  at::Tensor weight;  // B, dtype: 1 for real rows, 0 for padding
  int64_t rows() const { return t.defined() ? t.size(0) : 0; }
};

/// Copies a Table (a loader batch, or any block of rows) into tensors of `dtype` on `device`: one copy
/// per column, no per-row work. A table without a weight column gets weight 1 everywhere.
/// Throws DataError when the columns disagree in length or an arm lies outside [0, num_arms).
Batch to_batch(const data::Table& table, at::ScalarType dtype = at::kFloat, at::Device device = at::kCPU);

}  // namespace dfcl::model
