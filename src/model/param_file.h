// \brief Named-tensor files: parameters saved and loaded by name (torch's pickle format, readable by torch.load).
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <string>   // for std::string
#include <utility>  // for std::pair
#include <vector>   // for std::vector

namespace dfcl::model {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

/// Writes the tensors (copied to CPU, contiguous) as one dict {name: tensor} with torch::pickle_save, the
/// torch.save zip format: Python reads it with `torch.load(path, weights_only=False)`, or inside
/// `torch.serialization.safe_globals([torch.jit._pickle.restore_type_tag])` (checked with torch 2.11).
/// Written to `path.partial`, then renamed. Throws IoError when the file cannot be written.
void write_param_file(const std::string& path, const NamedTensors& tensors);
/// Reads a file written by write_param_file, in the file's order. (LibTorch 1.13 cannot unpickle a dict that
/// Python's torch.save wrote: its unpickler lacks the SETITEM opcode.) Throws IoError when the file cannot be
/// opened and DataError when it is not a dict of name -> tensor.
NamedTensors read_param_file(const std::string& path);

}  // namespace dfcl::model
