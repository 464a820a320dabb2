// \brief ParamLayout: appending entries and viewing them in a flat vector.
#include "model/param_layout.h"

#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for Tensor::narrow, Tensor::view

#include "core/error.h"  // for DataError

namespace dfcl::model {

size_t ParamLayout::add(const std::string& name, std::vector<int64_t> shape) {
  if (find(name) >= 0) throw DataError(fmt::format("parameter layout: duplicate parameter name '{}'", name));
  ParamEntry e;
  e.name = name;
  e.offset = size_;
  e.numel = 1;
  for (int64_t d : shape) e.numel *= d;
  e.shape = std::move(shape);
  size_ += e.numel;
  entries_.push_back(std::move(e));
  return entries_.size() - 1;
}

int64_t ParamLayout::find(const std::string& name) const {
  for (size_t i = 0; i < entries_.size(); ++i)
    if (entries_[i].name == name) return static_cast<int64_t>(i);
  return -1;
}

at::Tensor ParamLayout::view(const at::Tensor& flat, size_t i) const {
  const ParamEntry& e = entries_.at(i);
  return flat.narrow(0, e.offset, e.numel).view(e.shape);
}

}  // namespace dfcl::model
