// \brief Named slices of one flat parameter vector: (name, offset, shape) per tensor.
//
// A model keeps all its parameters in one contiguous 1-D tensor and reads them through this table, so a
// functional forward can run on any vector of the same length (a perturbed copy, a Bi-DFCL inner copy, a
// Hessian-vector probe) and optimisers, reducers and checkpoints see one buffer.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <cstdint>  // for int64_t
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace dfcl::model {

struct ParamEntry {
  std::string name;
  int64_t offset = 0;  // first element in the flat vector
  int64_t numel = 0;
  std::vector<int64_t> shape;
};

class ParamLayout {
 public:
  /// Appends a tensor of `shape` after the previous one; returns its index. Names must be unique.
  size_t add(const std::string& name, std::vector<int64_t> shape);
  const std::vector<ParamEntry>& entries() const { return entries_; }
  /// Total number of scalars (the flat vector's length).
  int64_t size() const { return size_; }
  /// Index of `name`, or -1 when absent.
  int64_t find(const std::string& name) const;
  /// The slice of `flat` for entry `i`, shaped; a view, so autograd flows back into `flat`.
  at::Tensor view(const at::Tensor& flat, size_t i) const;

 private:
  std::vector<ParamEntry> entries_;
  int64_t size_ = 0;
};

}  // namespace dfcl::model
