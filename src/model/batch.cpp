// \brief to_batch: one tensor copy per column of a Table.
#include "model/batch.h"

#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::from_blob

#include <algorithm>  // for std::minmax_element

#include "core/error.h"   // for DataError
#include "data/schema.h"  // for Table

namespace dfcl::model {
namespace {
// Wraps a column (no copy) and copies it to (device, dtype) in one step.
template <class T>
at::Tensor column(const std::vector<T>& v, at::IntArrayRef shape, at::ScalarType from, at::ScalarType to,
                  at::Device device) {
  auto view = at::from_blob(const_cast<T*>(v.data()), shape, at::TensorOptions().dtype(from));
  return view.to(device, to, /*non_blocking=*/false, /*copy=*/true);
}

void expect_size(const char* name, size_t got, int64_t want) {
  if (static_cast<int64_t>(got) != want)
    throw DataError(
        fmt::format("batch column '{}' has {} values, expected {}; the table is inconsistent (reset it "
                    "with Table::reset before filling)",
                    name, got, want));
}
}  // namespace

Batch to_batch(const data::Table& tb, at::ScalarType dtype, at::Device device) {
  const int64_t n = tb.rows, f = tb.num_features;
  expect_size("features", tb.features.size(), n * f);
  expect_size("treatment", tb.treatment.size(), n);
  expect_size("revenue", tb.revenue.size(), n);
  expect_size("cost", tb.cost.size(), n);
  if (tb.with_weight) expect_size("weight", tb.weight.size(), n);
  if (n > 0 && tb.num_arms > 0) {
    auto mm = std::minmax_element(tb.treatment.begin(), tb.treatment.end());
    if (*mm.first < 0 || *mm.second >= tb.num_arms)
      throw DataError(fmt::format("batch column 'treatment' holds arm {} outside [0, {}); check the dataset's arms",
                                  *mm.first < 0 ? *mm.first : *mm.second, tb.num_arms));
  }
  Batch b;
  b.x = column(tb.features, {n, f}, at::kFloat, dtype, device);
  b.t = column(tb.treatment, {n}, at::kInt, at::kLong, device);
  b.y_r = column(tb.revenue, {n}, at::kFloat, dtype, device);
  b.y_c = column(tb.cost, {n}, at::kFloat, dtype, device);
  b.weight = tb.with_weight ? column(tb.weight, {n}, at::kFloat, dtype, device)
                            : at::ones({n}, at::TensorOptions().dtype(dtype).device(device));
  return b;
}

}  // namespace dfcl::model
